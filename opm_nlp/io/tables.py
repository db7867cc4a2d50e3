"""Reading and writing tables, and the rules for their cells that every stage shares.

Formats: CSV (UTF-8, UTF-8 with BOM, Excel's cp1252/latin-1, or UTF-16/UTF-32 with a BOM; detected
or given), XLSX and Parquet, chosen by file extension; read whole (:func:`read_table`) or in chunks
(:func:`iter_chunks`), written all-or-nothing (:func:`atomic_output`, :func:`write_table`,
:func:`write_csv`, :func:`write_xlsx`, :func:`write_json`). Text a spreadsheet would run as a formula
is written so that it never runs, and read back as it was (:mod:`opm_nlp.io.formulas`). A cell is
read as text by one rule (:func:`cell_text`, :func:`text_values`, :func:`answered`,
:func:`parse_numbers`), and errors give the spreadsheet's row numbers (:func:`row_number`) and, for a
column name that is not there, the closest one (:func:`closest_name`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from opm_nlp.exceptions import DataError
from opm_nlp.io.formats import (
    csv_chunks,
    parquet_chunks,
    read_csv_file,
    read_parquet_file,
    read_xlsx_file,
    xlsx_chunks,
)
from opm_nlp.io.formulas import append_frame, escape_frame, warn_removed_characters

logger = logging.getLogger(__name__)

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm")
PARQUET_EXTENSIONS = (".parquet", ".pq")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_EXTENSIONS:
        return "csv"
    if suffix in EXCEL_EXTENSIONS:
        return "excel"
    if suffix in PARQUET_EXTENSIONS:
        return "parquet"
    raise DataError(
        f"{path}: unsupported file type '{path.suffix or '(none)'}'. "
        f"Use .csv, .tsv, .xlsx or .parquet."
    )


def _input(path: str | Path) -> tuple[Path, str]:
    """An input file's path and kind; a missing file or an unsupported type is a clear error."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise DataError(f"File not found: {path}.")
    return path, kind


def read_table(path: str | Path, encoding: str | None = None, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a CSV, XLSX or Parquet file into a DataFrame of strings and numbers.

    CSV cells are read as text, so ids like ``007`` keep their zeros and empty answers stay ``""``;
    a leading ``'`` that opm-nlp wrote to keep text from running as a formula is removed
    (:func:`~opm_nlp.io.formulas.unescape_formula`). Binary Parquet columns are read as UTF-8 text.

    Parameters
    ----------
    path : str or Path
        The file; its extension picks the reader.
    encoding : str, optional
        Text encoding of a CSV file. By default a byte-order mark decides (UTF-8, UTF-16, UTF-32);
        without one UTF-8 is tried, then cp1252 (what Excel writes on Windows), then latin-1.
    sheet : str or int, optional
        Worksheet of an XLSX file (default: the first).

    Raises
    ------
    DataError
        If the file is missing, of another type, damaged, or not text in the given encoding.
    """
    path, kind = _input(path)
    if kind == "csv":
        return read_csv_file(path, _separator(path), encoding)
    if kind == "excel":
        return read_xlsx_file(path, sheet)
    return read_parquet_file(path)


def iter_chunks(path: str | Path, chunk_size: int, encoding: str | None = None,
                sheet: str | None = None) -> Iterator[pd.DataFrame]:
    """Read a CSV, XLSX or Parquet file as DataFrames of 1 to ``chunk_size`` rows.

    Cells are read as :func:`read_table` reads them (``sheet``: the worksheet of an XLSX file, default
    the first); memory holds one chunk at a time. A file with a header row and no data rows yields no
    chunk, whatever its format.
    """
    path, kind = _input(path)
    if kind == "csv":
        chunks = csv_chunks(path, _separator(path), chunk_size, encoding)
    elif kind == "parquet":
        chunks = parquet_chunks(path, chunk_size)
    else:
        chunks = xlsx_chunks(path, chunk_size, sheet)
    for chunk in chunks:
        if len(chunk):
            yield chunk


def closest_name(name: str, names: Iterable[object]) -> str | None:
    """The one of ``names`` that ``name`` most likely meant: the same but for case, else the closest
    spelling (:func:`difflib.get_close_matches`, similarity at least 0.75); ``None`` if none is close.

    Examples
    --------
    >>> closest_name("Answer", ["response_id", "answer"]), closest_name("goal_seting", ["goal_setting"])
    ('answer', 'goal_setting')
    """
    import difflib

    names = [str(n) for n in names]
    same = [n for n in names if n.casefold() == name.casefold()]
    if same:
        return same[0]
    folded: dict[str, str] = {}
    for n in names:
        folded.setdefault(n.casefold(), n)
    # 0.75 keeps typos (goal_seting, anwser: 0.83 and more) and drops look-alikes (notes ~ other: 0.6)
    match = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.75)
    return folded[match[0]] if match else None


def did_you_mean(name: str, names: Iterable[object]) -> str:
    """``" Did you mean 'x'?"`` for the closest of ``names`` (:func:`closest_name`), or ``""``."""
    match = closest_name(name, names)
    return f" Did you mean '{match}'?" if match is not None else ""


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str, hint: str) -> None:
    """Raise a one-line :class:`DataError` naming the first of ``columns`` missing from ``frame``.

    The message lists the table's columns and the closest to the missing one; ``hint`` says which
    option picks the column (``"Pass --id-col ..."``).
    """
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"Column '{column}' not found in {source}. Columns: {list(frame.columns)}."
                f"{did_you_mean(column, frame.columns)} {hint}"
            )


def cell_text(value: object) -> str:
    """A table cell as text: empty for a missing value, ``3`` for a whole number read as ``3.0``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value).strip()


def text_values(values: pd.Series) -> pd.Series:
    """A column as stripped text, a missing cell as ``""`` (the one rule for answers and ids)."""
    return values.map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v).strip())


def answered(values: pd.Series) -> np.ndarray:
    """Boolean array: True where a column of answers holds text (not empty, not missing)."""
    return text_values(values).ne("").to_numpy()


def parse_numbers(values: pd.Series, where: str, expected: str, fix: str) -> pd.Series:
    """A column as floats, an empty cell as NaN; a cell that is not a number is one clear error.

    ``where`` names the file and column (``"x.csv: column 'q1'"``), ``expected`` what a cell should
    hold (``"a number"``), ``fix`` how to mend the file.
    """
    text = text_values(values)
    numbers = pd.to_numeric(text.where(text.ne(""), None), errors="coerce").astype(float)
    bad = np.flatnonzero((numbers.isna() & text.ne("")).to_numpy())
    if len(bad):
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise DataError(f"{where}, row {row_number(bad[0])}{more}: expected {expected}, found "
                        f"{values.iloc[bad[0]]!r}. {fix}")
    return numbers


def row_number(index: int) -> int:
    """Spreadsheet row number of a 0-based data index (row 1 is the header), for error messages."""
    return int(index) + 2


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Give a temporary path beside ``path``; on success rename it over ``path``, else remove it.

    Readers never see a half-written file, and a failed or interrupted write leaves the old file
    (if any) untouched. The file gets the permissions a newly created file would (the umask).

    Examples
    --------
    >>> with atomic_output("out.csv") as tmp:   # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; an output is an ordinary file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_table(frame: pd.DataFrame, path: str | Path, answer_col: str | None = None) -> Path:
    """Write a DataFrame to CSV, XLSX or Parquet (by extension), atomically.

    The table is written to a temporary file beside ``path`` and renamed over it at the end, so an
    interrupted run never leaves a partial file. No text runs as a formula when the file is opened
    in a spreadsheet, and :func:`read_table` reads it back as it was (:mod:`opm_nlp.io.formulas`).
    ``answer_col``: the column of answers that spans columns point into (XLSX, see :func:`add_sheet`).
    """
    path = Path(path)
    kind = _kind(path)
    with atomic_output(path) as tmp:
        if kind == "csv":
            write_csv(frame, tmp, sep=_separator(path))
        elif kind == "excel":
            write_xlsx({"data": frame}, tmp, answer_col)
        else:
            frame.to_parquet(tmp, index=False)
    return path


def write_csv(frame: pd.DataFrame, target: str | Path | IO[str], sep: str = ",", header: bool = True) -> None:
    """Write ``frame`` as UTF-8 CSV to a path or to a text stream opened with ``newline=""``.

    Text that a spreadsheet would run as a formula gets a leading ``'``
    (:func:`~opm_nlp.io.formulas.escape_frame`). Rows end in CR LF (RFC 4180), so that a field
    holding a line break, even a lone carriage return, is quoted and read back as one field.
    Not atomic by itself: write to a path from :func:`atomic_output`.
    """
    escape_frame(frame).to_csv(target, index=False, sep=sep, header=header, encoding="utf-8",
                               lineterminator="\r\n")


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | Path, answer_col: str | None = None) -> None:
    """Write DataFrames as sheets of an XLSX workbook, with text always stored as text (:func:`add_sheet`)."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, frame in sheets.items():
        add_sheet(workbook, title, frame, answer_col)
    workbook.save(path)


def add_sheet(workbook, title: str, frame: pd.DataFrame, answer_col: str | None = None):
    """Append a DataFrame to an openpyxl workbook as a sheet, column names as its first row.

    Text, column names included, is stored in text cells, never as a formula a spreadsheet would run
    (:func:`~opm_nlp.io.formulas.append_frame`); control characters XLSX cannot hold are removed,
    with a warning, and the spans of the answers in ``answer_col`` moved to match.
    """
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title=title[:31])
    warn_removed_characters(append_frame(sheet, frame, answer_col=answer_col), sheet.title)
    for j, column in enumerate(frame.columns, start=1):
        sheet.column_dimensions[get_column_letter(j)].width = min(60, max(10, len(str(column)) + 2))
    sheet.freeze_panes = "A2"
    return sheet


def write_json(data: object, path: str | Path) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    import json

    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
