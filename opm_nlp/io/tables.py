"""Reading and writing tables, and the rules for their cells that every stage shares.

Formats: CSV (UTF-8, UTF-8 with BOM, or Excel's cp1252/latin-1, detected or given), XLSX and
Parquet, chosen by file extension; read whole (:func:`read_table`) or in chunks
(:func:`iter_chunks`), written all-or-nothing (:func:`atomic_output`, :func:`write_table`,
:func:`write_xlsx`, :func:`write_json`). A cell is read as text by one rule (:func:`cell_text`,
:func:`text_values`, :func:`answered`, :func:`parse_numbers`), and errors give the spreadsheet's row
numbers (:func:`row_number`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.exceptions import DataError
from opm_nlp.io.paths import check_sheet

logger = logging.getLogger(__name__)

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm")
PARQUET_EXTENSIONS = (".parquet", ".pq")
_FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_FORMULA_START = ("=", "+", "-", "@")


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

    CSV cells are read as text, so ids like ``007`` keep their zeros and empty answers stay ``""``.

    Parameters
    ----------
    path : str or Path
        The file; its extension picks the reader.
    encoding : str, optional
        Text encoding of a CSV file. By default UTF-8 (with or without BOM) is tried, then cp1252
        (what Excel writes on Windows), then latin-1.
    sheet : str or int, optional
        Worksheet of an XLSX file (default: the first).
    """
    path, kind = _input(path)
    try:
        if kind == "csv":
            return _read_csv(path, _separator(path), encoding)
        if kind == "excel":
            check_sheet(path, sheet)
            frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=object)
            frame.columns = [str(c) for c in frame.columns]
            return frame
        return pd.read_parquet(path)
    except DataError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read this {kind} file: {first}.") from None


def _read_csv(path: Path, sep: str, encoding: str | None) -> pd.DataFrame:
    encodings = (encoding,) if encoding else _FALLBACK_ENCODINGS
    for enc in encodings:
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=enc)
        except UnicodeDecodeError:
            if encoding:
                raise DataError(
                    f"{path}: not valid {encoding} text. Check the file's encoding, or omit --encoding "
                    f"to detect it."
                ) from None
            continue
        except LookupError:
            raise DataError(f"Unknown encoding '{encoding}'. Use e.g. utf-8, cp1252 or latin-1.") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty; expected a header row and answers.") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: not a well-formed CSV file: {str(exc).strip()}.") from None
        if enc != "utf-8-sig":
            logger.info("%s: read as %s", path, enc)
        return frame
    raise DataError(f"{path}: cannot decode the file; pass --encoding.")  # latin-1 never fails


def detect_encoding(path: Path) -> str:
    """The first of UTF-8 (with or without BOM), cp1252 and latin-1 that decodes the whole file.

    Reads the file in blocks, so memory stays flat on large files.
    """
    import codecs

    for encoding in _FALLBACK_ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def iter_chunks(path: str | Path, chunk_size: int, encoding: str | None = None,
                sheet: str | None = None) -> Iterator[pd.DataFrame]:
    """Read a CSV, XLSX or Parquet file as DataFrames of at most ``chunk_size`` rows.

    Cells are read as :func:`read_table` reads them (``sheet``: the worksheet of an XLSX file, default
    the first); memory holds one chunk at a time.
    """
    path, kind = _input(path)
    try:
        if kind == "csv":
            enc = encoding or detect_encoding(path)
            try:
                reader = pd.read_csv(path, sep=_separator(path), dtype=str, keep_default_na=False, encoding=enc,
                                     chunksize=chunk_size)
            except pd.errors.EmptyDataError:
                raise DataError(f"{path}: the file is empty; expected a header row and answers.") from None
            with reader:
                yield from reader
        elif kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            yield from _iter_xlsx(path, chunk_size, sheet)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid {encoding} text. Check the file's encoding, or omit --encoding "
                        f"to detect it.") from None
    except LookupError:
        raise DataError(f"Unknown encoding '{encoding}'. Use e.g. utf-8, cp1252 or latin-1.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a well-formed CSV file: {str(exc).strip()}.") from None


def _iter_xlsx(path: Path, chunk_size: int, sheet: str | None = None) -> Iterator[pd.DataFrame]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        check_sheet(path, sheet, workbook.sheetnames)
        rows = (workbook[sheet] if sheet else workbook.worksheets[0]).iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise DataError(f"{path}: the {f'sheet {sheet!r}' if sheet else 'first sheet'} is empty; expected a "
                            f"header row and answers.")
        columns = [str(c) for c in header]
        block: list = []
        for row in rows:
            block.append(row)
            if len(block) == chunk_size:
                yield pd.DataFrame(block, columns=columns, dtype=object)
                block = []
        if block:
            yield pd.DataFrame(block, columns=columns, dtype=object)
    finally:
        workbook.close()


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str, hint: str) -> None:
    """Raise a one-line :class:`DataError` naming the first of ``columns`` missing from ``frame``.

    ``hint`` says which option picks the column (``"Pass --id-col ..."``).
    """
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"Column '{column}' not found in {source}. Columns: {list(frame.columns)}. {hint}"
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


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame to CSV, XLSX or Parquet (by extension), atomically.

    The table is written to a temporary file beside ``path`` and renamed over it at the end, so an
    interrupted run never leaves a partial file. In XLSX output, text that a spreadsheet would run as
    a formula (starting with ``=``, ``+``, ``-`` or ``@``) is stored as plain text.
    """
    path = Path(path)
    kind = _kind(path)
    with atomic_output(path) as tmp:
        if kind == "csv":
            frame.to_csv(tmp, index=False, sep=_separator(path), encoding="utf-8")
        elif kind == "excel":
            write_xlsx({"data": frame}, tmp)
        else:
            frame.to_parquet(tmp, index=False)
    return path


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Write DataFrames as sheets of an XLSX workbook, with formula-like text kept as text."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, frame in sheets.items():
        add_sheet(workbook, title, frame)
    workbook.save(path)


def add_sheet(workbook, title: str, frame: pd.DataFrame):
    """Append a DataFrame to an openpyxl workbook as a sheet; formula-like text is stored as text.

    Cells starting with ``=``, ``+``, ``-`` or ``@`` would otherwise be stored as formulas that a
    spreadsheet runs when the file is opened.
    """
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title=title[:31])
    sheet.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        sheet.append([_cell(v) for v in row])
    for cell_row in sheet.iter_rows(min_row=2):
        for cell in cell_row:
            if isinstance(cell.value, str) and cell.value.startswith(_FORMULA_START):
                cell.data_type = "s"  # openpyxl would otherwise store it as a formula
    for j, column in enumerate(frame.columns, start=1):
        sheet.column_dimensions[get_column_letter(j)].width = min(60, max(10, len(str(column)) + 2))
    sheet.freeze_panes = "A2"
    return sheet


def _cell(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return "; ".join(map(str, value))
    return value


def write_json(data: object, path: str | Path) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    import json

    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
