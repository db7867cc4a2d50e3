"""Batch tagging of survey files: in chunks, resumable, on one process or a Dask cluster.

:func:`tag_file` reads the input a chunk at a time, tags each chunk and stores it as a part file
(written atomically) in a work folder beside the output, ``.<output name>.partial/``. When all chunks
are done, the parts are joined into the output (again through a temporary file and a rename) and
the work folder is removed. Memory holds one chunk at a time, so it does not grow with the input.

If a run is interrupted (Ctrl-C, a crash, even ``kill -9``), the finished parts stay; running the
same command with ``resume=True`` (``--resume``) skips them and gives exactly the output an
uninterrupted run gives. The work folder records the input file, model and options, and a resume
with different ones is refused.

With ``engine="dask"`` the chunks are the partitions of a :mod:`dask.dataframe`, tagged by the
workers of a Dask cluster (a local one by default); the output is the same as on one process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opm_nlp.columns import NEEDS_REVIEW_COL
from opm_nlp.model.coding_model import CodingModel, resolve_carry
from opm_nlp.exceptions import DataError, OpmNlpError
from opm_nlp.io.responses import check_responses
from opm_nlp.io.tables import (
    _FORMULA_START,
    _cell,
    _kind,
    _separator,
    atomic_output,
    iter_chunks,
)
from opm_nlp.io.tables import row_number as _row

logger = logging.getLogger(__name__)

ENGINES = ("local", "dask")
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


def _manifest(model_dir: Path, model: CodingModel, input_path: Path, text_col: str, id_col: str,
              carry: list[str] | None, chunk_size: int, encoding: str | None, engine: str,
              review_margin: float) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        "model": str(Path(model_dir).resolve()), "model_files": model.metadata.get("files"),
        "backend": getattr(model.embedder, "backend", None),
        "text_col": text_col, "id_col": id_col, "carry": carry, "chunk_size": chunk_size,
        "encoding": encoding, "engine": engine, "review_margin": review_margin,
    }


def _write_part(frame: pd.DataFrame, folder: Path, index: int) -> None:
    final = folder / f"part-{index:06d}.parquet"
    tmp = folder / f".part-{index:06d}.{os.getpid()}.tmp"
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def tag_file(model_dir: str | Path, input_path: str | Path, out: str | Path, text_col: str, id_col: str, *,
             encoding: str | None = None, carry: list[str] | None = None, chunk_size: int = 2000,
             resume: bool = False, progress: bool = True, engine: str = "local", backend: str | None = None,
             cache: bool = True, scheduler: str | None = None, model: CodingModel | None = None,
             review_margin: float | None = None) -> TagSummary:
    """Tag every answer of a CSV, XLSX or Parquet file and write the tagged table to ``out``.

    Parameters
    ----------
    model_dir : str or Path
        A saved model folder.
    input_path, out : str or Path
        Answers to tag; the tagged table to write (.csv, .xlsx or .parquet).
    text_col, id_col : str
        Answer text and response id columns.
    carry : list of str, optional
        Columns to copy to the output (default: all other columns).
    chunk_size : int
        Answers per chunk (the unit of progress, memory and resumption).
    resume : bool
        Continue an interrupted run of the same command.
    engine : {'local', 'dask'}
        Tag chunks in this process, or as partitions on a Dask cluster.
    backend : {'torch', 'onnx', 'onnx-int8'}, optional
        Embedding backend (default: the one the model was trained with).
    cache : bool
        Use the on-disk embedding cache.
    scheduler : str, optional
        Address of a running Dask scheduler (``engine='dask'``); default a local cluster.
    model : CodingModel, optional
        The model already loaded from ``model_dir`` (saves loading it again).
    review_margin : float, optional
        Flag an answer for review when a code's score is this close to its threshold (default: the
        margin the model was trained with).

    Returns
    -------
    TagSummary
    """
    if engine not in ENGINES:
        raise DataError(f"Unknown engine '{engine}'. Use one of {list(ENGINES)}.")
    if chunk_size < 1:
        raise DataError(f"--chunk-size must be at least 1; got {chunk_size}.")
    if review_margin is not None and not 0 <= review_margin <= 1:
        raise DataError(f"--review-margin must be between 0 and 1; got {review_margin}.")
    input_path, out, model_dir = Path(input_path), Path(out), Path(model_dir)
    _kind(out)  # an unsupported output type fails before any work
    if not input_path.is_file():
        raise DataError(f"File not found: {input_path}.")
    if model is None:
        model = CodingModel.load(model_dir, backend=backend, cache=cache)
    margin = model.review_margin if review_margin is None else review_margin
    work = _partial_dir(out)
    manifest = _manifest(model_dir, model, input_path, text_col, id_col, carry, chunk_size, encoding, engine, margin)
    done = 0
    if work.exists():
        if not resume:
            raise DataError(f"An interrupted run left {work}. Pass --resume to continue it, or delete that "
                            f"folder to start again.")
        try:
            recorded = json.loads((work / _MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            recorded = None
        if recorded != manifest:
            changed = sorted(k for k in manifest if recorded is None or recorded.get(k) != manifest[k])
            raise DataError(f"Cannot resume from {work}: it was started with a different {', '.join(changed)}. "
                            f"Run the original command again, or delete that folder to start again.")
        done = len(_parts(work))
    else:
        work.mkdir(parents=True)
        (work / _MANIFEST).write_text(json.dumps(manifest, indent=1))

    seen: dict[str, int] = {}
    for part in _parts(work)[:done]:
        ids = pd.read_parquet(part, columns=[id_col])[id_col]
        seen.update((rid, -1) for rid in ids)
    summary = TagSummary(resumed_chunks=done)
    from tqdm.auto import tqdm

    chunks = (_dask_chunks(model_dir, input_path, text_col, id_col, carry, chunk_size, encoding, done,
                           backend, cache, scheduler, model, margin)
              if engine == "dask" else _local_chunks(model, input_path, text_col, id_col, carry, chunk_size,
                                                     encoding, done, margin))
    try:
        bar = None  # opened after the first chunk, so a bad input fails with its message alone
        started = time.time()
        try:
            for index, first_row, tagged in chunks:
                _check_unique(tagged[id_col], seen, first_row, id_col, input_path)
                _write_part(tagged, work, index)
                if bar is None:
                    bar = tqdm(desc="tagging", unit="answer", disable=not progress)
                    bar.start_t = started  # the rate counts the first chunk's time too
                bar.update(len(tagged))
        finally:
            if bar is not None:
                bar.close()
        parts = _parts(work)
        if not parts:
            raise DataError(f"{input_path}: no answers found (only a header?); nothing to tag.")
    except OpmNlpError:
        # bad input: the saved chunks cannot be resumed once the input is fixed
        shutil.rmtree(work, ignore_errors=True)
        raise
    for part in parts:
        frame = pd.read_parquet(part, columns=[text_col, NEEDS_REVIEW_COL])
        summary.answers += len(frame)
        summary.empty += int(frame[text_col].eq("").sum())
        summary.needs_review += int(frame[NEEDS_REVIEW_COL].sum())
    _join_parts(parts, out)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _check_unique(ids: pd.Series, seen: dict[str, int], first_row: int, id_col: str, source: Path) -> None:
    for offset, rid in enumerate(ids):
        if rid in seen:
            earlier = f"row {_row(seen[rid])}" if seen[rid] >= 0 else "an earlier chunk"
            raise DataError(f"{source}: response id '{rid}' appears more than once ({earlier} and row "
                            f"{_row(first_row + offset)}). Ids in '{id_col}' must be unique.")
        seen[rid] = first_row + offset


def _local_chunks(model, input_path, text_col, id_col, carry, chunk_size, encoding, done, margin):
    columns = None
    for index, chunk in enumerate(iter_chunks(input_path, chunk_size, encoding)):
        first_row = index * chunk_size
        if columns is None:
            columns = resolve_carry(chunk.columns, text_col, id_col, carry, model.codebook)
        if index < done:
            continue
        chunk = check_responses(chunk, text_col, id_col, source=str(input_path), first_row=first_row)
        # one encoder call per chunk: its answers are sorted by length together, so less padding
        tagged = model.tag(chunk, text_col, id_col, carry=columns, source=str(input_path),
                           chunk_size=max(1, len(chunk)), review_margin=margin)
        if model.embedder is not None:
            model.embedder.forget()  # memory stays flat; the disk cache keeps the vectors
        yield index, first_row, tagged


# -- Dask ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _worker_model(model_dir: str, backend: str | None, cache: bool) -> CodingModel:
    """One loaded model per worker process (and per model folder)."""
    return CodingModel.load(model_dir, backend=backend, cache=cache)


def _tag_partition(frame: pd.DataFrame, model_dir: str, text_col: str, id_col: str, carry: list[str],
                   backend: str | None, cache: bool, source: str, first_row: int | None = None,
                   review_margin: float | None = None) -> pd.DataFrame:
    model = _worker_model(model_dir, backend, cache)
    frame = check_responses(frame, text_col, id_col, source=source, first_row=first_row or 0)
    tagged = model.tag(frame, text_col, id_col, carry=carry, source=source, chunk_size=max(1, len(frame)),
                       review_margin=review_margin)
    if model.embedder is not None:
        model.embedder.forget()
    return tagged


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
    return ddf.map_partitions(_tag_partition, str(Path(model_dir).resolve()), text_col, id_col, columns,
                              backend, cache, "the dask dataframe", None, review_margin, meta=meta)


def _dask_chunks(model_dir, input_path, text_col, id_col, carry, chunk_size, encoding, done, backend, cache,
                 scheduler, model, margin):
    """Read chunks here, tag them on the cluster's workers, yield them back in order.

    Reading stays in this process (it is cheap and keeps answers with line breaks whole, which
    byte-range splitting of a CSV would not); at most two chunks per worker are in flight.
    """
    from collections import deque

    from dask.distributed import Client, LocalCluster

    if scheduler:
        cluster, client = None, Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        client = Client(cluster)
    try:
        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        pending: deque = deque()
        columns = None
        target = str(Path(model_dir).resolve())
        for index, chunk in enumerate(iter_chunks(input_path, chunk_size, encoding)):
            if columns is None:
                columns = resolve_carry(chunk.columns, text_col, id_col, carry, model.codebook)
            if index < done:
                continue
            first_row = index * chunk_size
            future = client.submit(_tag_partition, chunk, target, text_col, id_col, columns, backend, cache,
                                   str(input_path), first_row, margin, pure=False)
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


# -- joining parts -----------------------------------------------------------------------------------
def _join_parts(parts: list[Path], out: Path) -> None:
    kind = _kind(out)
    with atomic_output(out) as tmp:
        if kind == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as stream:
                for i, part in enumerate(parts):
                    pd.read_parquet(part).to_csv(stream, index=False, header=i == 0, sep=_separator(out))
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
            _join_xlsx(parts, tmp)


def _join_xlsx(parts: list[Path], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    for i, part in enumerate(parts):
        frame = pd.read_parquet(part)
        if i == 0:
            sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            cells = []
            for value in row:
                value = _cell(value)
                if isinstance(value, str) and value.startswith(_FORMULA_START):
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.data_type = "s"  # text, never a formula
                    value = cell
                cells.append(value)
            sheet.append(cells)
    workbook.save(path)
