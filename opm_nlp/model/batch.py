"""Batch tagging of survey files: in chunks, resumable, on one process or a Dask cluster.

:func:`tag_file` reads the input a chunk at a time, tags each chunk and stores it as a part file
(written atomically) in a work folder beside the output, ``.<output name>.partial/``. When all chunks
are done, the parts are joined into the output (again through a temporary file and a rename) and
the work folder is removed. Memory holds one chunk at a time, so it does not grow with the input.

If a run is interrupted (Ctrl-C, a crash, even ``kill -9``), the finished parts stay; running the
same command with ``resume=True`` (``--resume``) skips them and gives exactly the output an
uninterrupted run gives. The work folder records the input file, the model and the options that
shape the output (:meth:`TagOptions.record <opm_nlp.model.options.TagOptions.record>`), and a resume
with different ones is refused.

With ``engine="dask"`` the chunks are tagged by the workers of a Dask cluster, a local one by default
(:mod:`opm_nlp.model.dask_tagging`); the output is the same as on one process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from opm_nlp.columns import NEEDS_REVIEW_COL
from opm_nlp.exceptions import DataError, OpmNlpError
from opm_nlp.io.formulas import append_frame, warn_removed_characters
from opm_nlp.io.paths import check_distinct
from opm_nlp.io.tables import _kind, _separator, answered, atomic_output, row_number, write_csv
from opm_nlp.model.chunks import pending_chunks, tag_chunk
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.dask_tagging import dask_chunks, tag_dataframe
from opm_nlp.model.options import ENGINES, TagOptions

__all__ = ["ENGINES", "TagOptions", "TagSummary", "tag_dataframe", "tag_file"]

logger = logging.getLogger(__name__)

_MANIFEST = "manifest.json"


@dataclass
class TagSummary:
    """What a batch run did."""

    answers: int = 0
    empty: int = 0
    needs_review: int = 0
    resumed_chunks: int = 0


def _partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _settle(options: TagOptions, model: CodingModel) -> TagOptions:
    """``options`` with the defaults the model decides filled in: its review margin and backend."""
    margin = model.review_margin if options.review_margin is None else options.review_margin
    return replace(options, review_margin=margin, backend=getattr(model.embedder, "backend", None))


def _resume_record(model_dir: Path, model: CodingModel, input_path: Path, options: TagOptions) -> dict:
    """What a run is resumed only with the same of: input file, model, and the options that shape the output."""
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        "model": str(Path(model_dir).resolve()), "model_files": model.metadata.get("files"),
        **options.record(),
    }


def _start_or_resume(work: Path, record: dict, resume: bool) -> int:
    """Start the work folder with its record, or check the record of the one there; chunks already done."""
    if not work.exists():
        work.mkdir(parents=True)
        (work / _MANIFEST).write_text(json.dumps(record, indent=1))
        return 0
    if not resume:
        raise DataError(f"An interrupted run left {work}. Pass --resume to continue it, or delete that "
                        f"folder to start again.")
    try:
        recorded = json.loads((work / _MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        recorded = None
    if recorded != record:
        changed = sorted(k for k in record if recorded is None or recorded.get(k) != record[k])
        raise DataError(f"Cannot resume from {work}: it was started with a different {', '.join(changed)}. "
                        f"Run the original command again, or delete that folder to start again.")
    return len(_parts(work))


def _write_part(frame: pd.DataFrame, folder: Path, index: int) -> None:
    final = folder / f"part-{index:06d}.parquet"
    tmp = folder / f".part-{index:06d}.{os.getpid()}.tmp"
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def tag_file(model_dir: str | Path, input_path: str | Path, out: str | Path, options: TagOptions, *,
             resume: bool = False, model: CodingModel | None = None) -> TagSummary:
    """Tag every answer of a CSV, XLSX or Parquet file and write the tagged table to ``out``.

    Parameters
    ----------
    model_dir : str or Path
        A saved model folder.
    input_path, out : str or Path
        Answers to tag; the tagged table to write (.csv, .xlsx or .parquet).
    options : TagOptions
        Columns, chunk size, engine, review margin, backend... (:class:`~opm_nlp.model.options.TagOptions`).
    resume : bool
        Continue an interrupted run of the same command; refused if the input, the model or an
        option that shapes the output (:meth:`TagOptions.record`) differs.
    model : CodingModel, optional
        The model already loaded from ``model_dir`` (saves loading it again).

    Returns
    -------
    TagSummary

    Raises
    ------
    DataError
        If ``out`` is the input file (by any path to it), or the input cannot be tagged.

    Examples
    --------
    >>> from opm_nlp.model.batch import TagOptions, tag_file
    >>> tag_file("models/opm_default", "wave3.csv", "tagged.csv",
    ...          TagOptions("answer", "response_id", chunk_size=500))  # doctest: +SKIP
    """
    input_path, out, model_dir = Path(input_path), Path(out), Path(model_dir)
    _kind(out)  # an unsupported output type fails before any work
    check_distinct([input_path], out)
    if not input_path.is_file():
        raise DataError(f"File not found: {input_path}.")
    if model is None:
        model = CodingModel.load(model_dir, backend=options.backend, cache=options.cache)
    options = _settle(options, model)
    work = _partial_dir(out)
    done = _start_or_resume(work, _resume_record(model_dir, model, input_path, options), resume)

    seen: dict[str, int] = {}
    for part in _parts(work)[:done]:
        ids = pd.read_parquet(part, columns=[options.id_col])[options.id_col]
        seen.update((rid, -1) for rid in ids)
    if options.engine == "dask":
        chunks = dask_chunks(model_dir, input_path, options, done, model)
    else:
        chunks = _local_chunks(model, input_path, options, done)
    try:
        _save_parts(chunks, work, seen, options, input_path)
        parts = _parts(work)
        if not parts:
            raise DataError(f"{input_path}: no answers found (only a header?); nothing to tag.")
    except OpmNlpError:
        # bad input: the saved chunks cannot be resumed once the input is fixed
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary = TagSummary(resumed_chunks=done)
    for part in parts:
        frame = pd.read_parquet(part, columns=[options.text_col, NEEDS_REVIEW_COL])
        summary.answers += len(frame)
        summary.empty += int((~answered(frame[options.text_col])).sum())
        summary.needs_review += int(frame[NEEDS_REVIEW_COL].sum())
    _join_parts(parts, out, options.text_col)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _save_parts(chunks, work: Path, seen: dict[str, int], options: TagOptions, input_path: Path) -> None:
    """Store each tagged chunk as a part file, checking ids stay unique, with a progress bar."""
    from tqdm.auto import tqdm

    bar = None  # opened after the first chunk, so a bad input fails with its message alone
    started = time.time()
    try:
        for index, first_row, tagged in chunks:
            _check_unique(tagged[options.id_col], seen, first_row, options.id_col, input_path)
            _write_part(tagged, work, index)
            if bar is None:
                bar = tqdm(desc="tagging", unit="answer", disable=not options.progress)
                bar.start_t = started  # the rate counts the first chunk's time too
            bar.update(len(tagged))
    finally:
        if bar is not None:
            bar.close()


def _check_unique(ids: pd.Series, seen: dict[str, int], first_row: int, id_col: str, source: Path) -> None:
    for offset, rid in enumerate(ids):
        if rid in seen:
            earlier = f"row {row_number(seen[rid])}" if seen[rid] >= 0 else "an earlier chunk"
            raise DataError(f"{source}: response id '{rid}' appears more than once ({earlier} and row "
                            f"{row_number(first_row + offset)}). Ids in '{id_col}' must be unique.")
        seen[rid] = first_row + offset


def _local_chunks(model: CodingModel, input_path: Path, options: TagOptions, done: int):
    """Tag the chunks after the first ``done`` in this process, one at a time."""
    for index, first_row, chunk, resolved in pending_chunks(input_path, options, done, model.codebook):
        yield index, first_row, tag_chunk(model, chunk, resolved, str(input_path), first_row)


# -- joining parts -----------------------------------------------------------------------------------
def _join_parts(parts: list[Path], out: Path, answer_col: str) -> None:
    kind = _kind(out)
    with atomic_output(out) as tmp:
        if kind == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as stream:
                for i, part in enumerate(parts):
                    write_csv(pd.read_parquet(part), stream, sep=_separator(out), header=i == 0)
        elif kind == "parquet":
            import pyarrow.parquet as pq

            writer = None
            try:
                for part in parts:
                    table = pq.read_table(part)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
            finally:
                if writer is not None:
                    writer.close()
        else:
            _join_xlsx(parts, tmp, answer_col)


def _join_xlsx(parts: list[Path], path: Path, answer_col: str) -> None:
    from collections import Counter

    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    removed: Counter = Counter()
    for i, part in enumerate(parts):
        removed += append_frame(sheet, pd.read_parquet(part), header=i == 0, answer_col=answer_col)
    warn_removed_characters(removed, "data")
    workbook.save(path)
