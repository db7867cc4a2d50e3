"""One chunk of a file of answers, tagged: the unit of work of :func:`~opm_nlp.model.batch.tag_file`.

The same on every engine: the chunks are read in this process (:func:`pending_chunks`) and tagged
here or on a Dask worker (:func:`tag_chunk`), so the output does not depend on where they ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import REVIEWED_SPANS_COL
from opm_nlp.io.responses import check_responses
from opm_nlp.io.tables import iter_chunks
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.tagged import resolve_carry
from opm_nlp.model.options import TagOptions


def pending_chunks(input_path: Path, options: TagOptions, done: int, codebook: Codebook
                   ) -> Iterator[tuple[int, int, pd.DataFrame, TagOptions]]:
    """The chunks of ``input_path`` after the first ``done``, as they are read.

    Yields
    ------
    index : int
        The chunk's number, from 0.
    first_row : int
        Its first answer's position in the file, from 0.
    chunk : DataFrame
        Its answers, unchecked.
    options : TagOptions
        ``options`` with ``carry`` resolved from the file's columns (:func:`resolve_carry`).
    """
    resolved = None
    for index, chunk in enumerate(iter_chunks(input_path, options.chunk_size, options.encoding, options.sheet)):
        if resolved is None:
            columns = resolve_carry(chunk.columns, options.text_col, options.id_col, options.carry, codebook)
            resolved = replace(options, carry=tuple(columns))
        if index < done:
            continue
        yield index, index * options.chunk_size, chunk, resolved


def tag_chunk(model: CodingModel, frame: pd.DataFrame, options: TagOptions, source: str,
              first_row: int = 0) -> pd.DataFrame:
    """Check and tag one chunk of answers with ``options`` (``carry`` already resolved).

    One encoder call per chunk: its answers are sorted by length together, so less padding. The
    encoder then forgets the chunk's vectors, so memory stays flat (the disk cache keeps them).
    """
    frame = check_responses(frame, options.text_col, options.id_col, source=source, first_row=first_row,
                            spans=(REVIEWED_SPANS_COL,))  # tagging writes evidence_spans anew
    tagged = model.tag(frame, options.text_col, options.id_col, carry=None if options.carry is None else list(options.carry),
                       source=source, chunk_size=max(1, len(frame)), review_margin=options.review_margin)
    if model.embedder is not None:
        model.embedder.forget()
    return tagged
