"""Tagging on a Dask cluster: a file's chunks (``tag_file(..., engine='dask')``) or a Dask DataFrame.

Each worker loads the model once from its folder (which must be readable by the workers) and tags
what it is sent exactly as one process would (:func:`~opm_nlp.model.chunks.tag_chunk`), with the
run's :class:`~opm_nlp.model.options.TagOptions`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from opm_nlp.io.responses import check_responses
from opm_nlp.model.chunks import pending_chunks, tag_chunk
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.tagged import resolve_carry
from opm_nlp.model.options import TagOptions


@functools.lru_cache(maxsize=4)
def _worker_model(model_dir: str, backend: str | None, cache: bool) -> CodingModel:
    """One loaded model per worker process (and per model folder)."""
    return CodingModel.load(model_dir, backend=backend, cache=cache)


def _tag_partition(frame: pd.DataFrame, model_dir: str, options: TagOptions, source: str,
                   first_row: int | None = None) -> pd.DataFrame:
    model = _worker_model(model_dir, options.backend, options.cache)
    return tag_chunk(model, frame, options, source, first_row or 0)


def tag_dataframe(ddf, model_dir: str | Path, text_col: str, id_col: str, carry: list[str] | None = None,
                  backend: str | None = None, cache: bool = True, review_margin: float | None = None):
    """Tag a :mod:`dask.dataframe` of answers, partition by partition, on the Dask workers.

    Returns a lazy dask DataFrame with the columns :meth:`CodingModel.tag` writes; each worker loads
    the model from ``model_dir`` once (the folder must be readable by the workers). ``review_margin``
    overrides the model's (see :meth:`CodingModel.tag`).

    Examples
    --------
    >>> import dask.dataframe as dd                                              # doctest: +SKIP
    >>> answers = dd.read_csv("wave*.csv", dtype=str, keep_default_na=False)     # doctest: +SKIP
    >>> tag_dataframe(answers, "models/opm_default", "answer", "response_id").to_parquet("tagged/")  # doctest: +SKIP
    """
    model = CodingModel.load(model_dir, backend=backend, cache=cache)
    columns = resolve_carry(ddf.columns, text_col, id_col, carry, model.codebook)
    meta = model.tag(check_responses(ddf._meta, text_col, id_col), text_col, id_col, carry=columns)
    options = TagOptions(text_col, id_col, carry=tuple(columns), review_margin=review_margin, backend=backend,
                         cache=cache)
    return ddf.map_partitions(_tag_partition, str(Path(model_dir).resolve()), options, "the dask dataframe", None,
                              meta=meta)


def dask_chunks(model_dir: Path, input_path: Path, options: TagOptions, done: int, model: CodingModel):
    """Read chunks here, tag them on the cluster's workers, yield them back in order.

    Reading stays in this process (it is cheap and keeps answers with line breaks whole, which
    byte-range splitting of a CSV would not); at most two chunks per worker are in flight.
    ``options.scheduler`` names a running cluster; by default a local one is started and stopped.

    Yields
    ------
    (index, first_row, tagged)
        As :func:`~opm_nlp.model.batch.tag_file` stores them.
    """
    from collections import deque

    from dask.distributed import Client, LocalCluster

    if options.scheduler:
        cluster, client = None, Client(options.scheduler)
    else:
        cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        client = Client(cluster)
    try:
        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        pending: deque = deque()
        target = str(Path(model_dir).resolve())
        for index, first_row, chunk, resolved in pending_chunks(input_path, options, done, model.codebook):
            future = client.submit(_tag_partition, chunk, target, resolved, str(input_path), first_row, pure=False)
            pending.append((index, first_row, future))
            while len(pending) >= limit:
                index_done, row, oldest = pending.popleft()
                yield index_done, row, oldest.result()
        while pending:
            index_done, row, oldest = pending.popleft()
            yield index_done, row, oldest.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
