"""Reading each file format: CSV encodings, damaged XLSX and Parquet files, binary Parquet columns.

The readers behind :func:`~opm_nlp.io.tables.read_table` and :func:`~opm_nlp.io.tables.iter_chunks`.
A CSV file's encoding is the one its byte-order mark names (UTF-8, UTF-16, UTF-32), else the first of
UTF-8, cp1252 and latin-1 that decodes it; CSV cells are read as text, with opm-nlp's formula
escaping undone (:mod:`opm_nlp.io.formulas`). An XLSX or Parquet file its reader cannot open is one
clear error saying how to mend it, whatever the library found wrong.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from opm_nlp.exceptions import DataError
from opm_nlp.io.paths import check_sheet
from opm_nlp.io.formulas import unescape_frame

logger = logging.getLogger(__name__)

_FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
# UTF-32 LE's mark begins with UTF-16 LE's, so it is looked for first
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_FIX = {
    "excel": "Open it in Excel and save it again as an Excel Workbook (.xlsx), or export it again.",
    "parquet": "Export it again (e.g. with pandas' DataFrame.to_parquet), or save the table as CSV.",
}


def read_xlsx_file(path: Path, sheet: str | int | None) -> pd.DataFrame:
    """A sheet of an XLSX file (default: the first) as a DataFrame, column names as text, empty cells missing."""
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:  # a damaged zip, missing parts, bad XML: all mean "not a readable XLSX"
        raise unreadable_error(path, "excel", exc) from None
    with book:
        if isinstance(sheet, str):
            check_sheet(path, sheet, book.sheet_names)
        try:
            # text such as "N/A", "None" or "NA" is an answer (or an id), not a missing cell: only an empty cell is
            frame = pd.read_excel(book, sheet_name=sheet or 0, dtype=object, keep_default_na=False, na_values=[""])
        except Exception as exc:
            raise unreadable_error(path, "excel", exc) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def unreadable_error(path: Path, kind: str, exc: Exception) -> DataError:
    """The one-line error for a file its format's reader cannot read (damaged, or another format)."""
    reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    name = "XLSX" if kind == "excel" else "Parquet"
    return DataError(f"{path}: not a readable {name} file ({reason}). {_FIX[kind]}")


def read_parquet_file(path: Path) -> pd.DataFrame:
    """A Parquet file as a DataFrame (:func:`parquet_frame`); a file pyarrow cannot read is one clear error."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # whatever pyarrow finds wrong, the file is not a Parquet file it can read
        raise unreadable_error(path, "parquet", exc) from None
    return parquet_frame(table, path)


def parquet_frame(table, path: Path) -> pd.DataFrame:
    """An Arrow table as a DataFrame, binary columns decoded as UTF-8 text (else one clear error).

    A binary column would otherwise become Python ``bytes``, written out as the text ``b'...'``.
    """
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type) or \
                pa.types.is_fixed_size_binary(field.type):
            try:
                text = pa.array([None if v is None else v.decode("utf-8") for v in table.column(index).to_pylist()],
                                type=pa.large_string())
            except UnicodeDecodeError:
                raise DataError(
                    f"{path}: column '{field.name}' holds binary data that is not UTF-8 text. Store it as text "
                    f"(a string column) when writing the Parquet file, or leave the column out."
                ) from None
            table = table.set_column(index, pa.field(field.name, text.type), text)
    return table.to_pandas()


def _csv_encodings(path: Path, encoding: str | None) -> tuple[str, ...]:
    """The encodings to try for a CSV file: the given one, the one its byte-order mark names, or the fallbacks."""
    if encoding:
        return (encoding,)
    bom = _bom_encoding(path)
    return (bom,) if bom else _FALLBACK_ENCODINGS


def _bom_encoding(path: Path) -> str | None:
    with path.open("rb") as handle:
        start = handle.read(4)
    return next((name for mark, name in _BOMS if start.startswith(mark)), None)


def read_csv_file(path: Path, sep: str, encoding: str | None) -> pd.DataFrame:
    """A CSV file as a DataFrame of text, in ``encoding`` or the one detected, formula escaping undone."""
    for enc in _csv_encodings(path, encoding):
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=enc)
        except UnicodeError:
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
        return unescape_frame(frame)
    raise DataError(f"{path}: cannot decode the file; pass --encoding.")  # latin-1 never fails


def detect_encoding(path: Path) -> str:
    """The encoding a byte-order mark names (UTF-8, UTF-16, UTF-32), else the first of UTF-8, cp1252
    and latin-1 that decodes the whole file.

    Reads the file in blocks, so memory stays flat on large files.
    """
    bom = _bom_encoding(path)
    if bom:
        return bom
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


def csv_chunks(path: Path, sep: str, chunk_size: int, encoding: str | None) -> Iterator[pd.DataFrame]:
    """A CSV file's rows as DataFrames of text of at most ``chunk_size`` rows, as :func:`read_csv_file` reads them."""
    enc = encoding or detect_encoding(path)
    try:
        try:
            reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=enc,
                                 chunksize=chunk_size)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty; expected a header row and answers.") from None
        with reader:
            for chunk in reader:
                yield unescape_frame(chunk)
    except UnicodeError:
        raise DataError(f"{path}: not valid {enc} text. Check the file's encoding, or omit --encoding "
                        f"to detect it.") from None
    except LookupError:
        raise DataError(f"Unknown encoding '{encoding}'. Use e.g. utf-8, cp1252 or latin-1.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a well-formed CSV file: {str(exc).strip()}.") from None


def parquet_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """A Parquet file's rows as DataFrames of at most ``chunk_size`` rows (:func:`parquet_frame`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        batch = next(batches, None)
    except Exception as exc:  # whatever pyarrow finds wrong, the file is not a Parquet file it can read
        raise unreadable_error(path, "parquet", exc) from None
    while batch is not None:
        yield parquet_frame(pa.Table.from_batches([batch]), path)
        try:
            batch = next(batches, None)
        except Exception as exc:
            raise unreadable_error(path, "parquet", exc) from None


def xlsx_chunks(path: Path, chunk_size: int, sheet: str | None = None) -> Iterator[pd.DataFrame]:
    """A sheet's rows of an XLSX file (default: the first) as DataFrames of at most ``chunk_size`` rows."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a damaged zip, missing parts, bad XML: all mean "not a readable XLSX"
        raise unreadable_error(path, "excel", exc) from None
    try:
        check_sheet(path, sheet, workbook.sheetnames)
        rows = (workbook[sheet] if sheet else workbook.worksheets[0]).iter_rows(values_only=True)
        header = _next_row(rows, path)
        if header is None:
            raise DataError(f"{path}: the {f'sheet {sheet!r}' if sheet else 'first sheet'} is empty; expected a "
                            f"header row and answers.")
        columns = [str(c) for c in header]
        block: list = []
        while (row := _next_row(rows, path)) is not None:
            block.append(row)
            if len(block) == chunk_size:
                yield pd.DataFrame(block, columns=columns, dtype=object)
                block = []
        if block:
            yield pd.DataFrame(block, columns=columns, dtype=object)
    finally:
        workbook.close()


def _next_row(rows: Iterator[tuple], path: Path) -> tuple | None:
    try:
        return next(rows, None)
    except Exception as exc:  # damage inside the sheet shows only when its rows are read
        raise unreadable_error(path, "excel", exc) from None

