"""Reading survey answers and coded data; writing tables safely.

Formats: CSV (UTF-8, UTF-8 with BOM, or Excel's cp1252/latin-1, detected or given), XLSX and
Parquet, chosen by file extension. Coded data comes *wide* (one 0/1 column per code id, the house
format), *long* (one row per response and code) or *delimited* (one column of code ids separated by
``;``, ``,`` or ``|``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import DataError

logger = logging.getLogger(__name__)

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm")
PARQUET_EXTENSIONS = (".parquet", ".pq")
_FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_TRUE = {"1", "1.0", "true", "yes", "y", "x"}
_FALSE = {"0", "0.0", "false", "no", "n", ""}
_FORMULA_START = ("=", "+", "-", "@")
_DELIMITERS = re.compile(r"\s*[;,|]\s*")


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


def iter_chunks(path: str | Path, chunk_size: int, encoding: str | None = None) -> Iterator[pd.DataFrame]:
    """Read a CSV, XLSX or Parquet file as DataFrames of at most ``chunk_size`` rows.

    Cells are read as :func:`read_table` reads them; memory holds one chunk at a time.
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
            yield from _iter_xlsx(path, chunk_size)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid {encoding} text. Check the file's encoding, or omit --encoding "
                        f"to detect it.") from None
    except LookupError:
        raise DataError(f"Unknown encoding '{encoding}'. Use e.g. utf-8, cp1252 or latin-1.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a well-formed CSV file: {str(exc).strip()}.") from None


def _iter_xlsx(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise DataError(f"{path}: the first sheet is empty; expected a header row and answers.")
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


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str, hint: str) -> None:
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


def read_responses(
    path: str | Path,
    text_col: str,
    id_col: str,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read survey answers: one row per response, with an id column and a text column.

    Ids are read as text and must be unique and non-empty. Empty answers are kept (as ``""``);
    every other column is kept too, so it can be carried through to outputs.

    Raises
    ------
    DataError
        If a column is missing, an id is empty or repeated.
    """
    frame = read_table(path, encoding=encoding)
    return check_responses(frame, text_col, id_col, source=str(path))


def check_responses(frame: pd.DataFrame, text_col: str, id_col: str, source: str = "the table",
                    first_row: int = 0) -> pd.DataFrame:
    """Validate and normalise an answers table already in memory (see :func:`read_responses`).

    ``first_row`` is the 0-based position of the frame's first row in its file, so that error
    messages give the file's row numbers when the file is read in chunks.
    """
    _require_columns(frame, [id_col], source, "Pass --id-col with the column that identifies each response.")
    _require_columns(frame, [text_col], source, "Pass --text-col with the column that holds the answers.")
    frame = frame.copy()
    frame[id_col] = text_values(frame[id_col])
    frame[text_col] = text_values(frame[text_col])
    empty_ids = np.flatnonzero(frame[id_col].eq("").to_numpy())
    if len(empty_ids):
        raise DataError(
            f"{source}: column '{id_col}' is empty in row {row_number(first_row + empty_ids[0])}"
            f"{f' and {len(empty_ids) - 1} more' if len(empty_ids) > 1 else ''}; every response needs an id."
        )
    duplicated = frame[id_col][frame[id_col].duplicated()]
    if len(duplicated):
        first = duplicated.iloc[0]
        rows = [row_number(first_row + i) for i in np.flatnonzero(frame[id_col].eq(first).to_numpy())]
        raise DataError(
            f"{source}: response id '{first}' appears more than once (rows {rows})"
            f"{f'; {duplicated.nunique()} ids are repeated' if duplicated.nunique() > 1 else ''}. "
            f"Ids in '{id_col}' must be unique."
        )
    return frame.reset_index(drop=True)


def row_number(index: int) -> int:
    """Spreadsheet row number of a 0-based data index (row 1 is the header), for error messages."""
    return int(index) + 2


def code_lookup(codebook: Codebook) -> dict[str, str]:
    """Map code ids and labels (case-insensitive) to code ids."""
    lookup = {}
    for code in codebook.codes:
        lookup[code.label.lower()] = code.id
    for code in codebook.codes:
        lookup[code.id.lower()] = code.id
    return lookup


def detect_format(frame: pd.DataFrame, codebook: Codebook, id_col: str, code_col: str | None) -> str:
    """Guess whether coded data is 'wide', 'long' or 'delimited'."""
    if code_col is None and any(code_id in frame.columns for code_id in codebook.ids):
        return "wide"
    column = code_col or next((c for c in ("codes", "code") if c in frame.columns), None)
    if column is None:
        return "wide"
    if id_col in frame.columns and frame[id_col].astype(str).duplicated().any():
        return "long"
    return "delimited"


def read_coded(
    path: str | Path,
    codebook: Codebook,
    text_col: str,
    id_col: str,
    encoding: str | None = None,
    format: str = "auto",
    code_col: str | None = None,
) -> pd.DataFrame:
    """Read human-coded answers into the wide house format.

    Parameters
    ----------
    path : str or Path
        CSV, XLSX or Parquet file.
    codebook : Codebook
        Codes the file's labels must come from.
    text_col, id_col : str
        Columns with the answer text and the response id.
    format : {'auto', 'wide', 'long', 'delimited'}
        How codes are stored: one 0/1 column per code id; one row per (response, code) pair; or one
        column of code ids separated by ``;``, ``,`` or ``|``. Code labels are accepted in place of ids.
    code_col : str, optional
        Column holding codes for the long and delimited formats (default ``codes`` or ``code``).

    Returns
    -------
    DataFrame
        One row per response: ``id_col``, ``text_col``, the other columns of the file, then one 0/1
        integer column per code id, in codebook order.
    """
    frame = read_table(path, encoding=encoding)
    return to_wide(frame, codebook, text_col, id_col, format=format, code_col=code_col, source=str(path))


def to_wide(
    frame: pd.DataFrame,
    codebook: Codebook,
    text_col: str,
    id_col: str,
    format: str = "auto",
    code_col: str | None = None,
    source: str = "the table",
) -> pd.DataFrame:
    """Convert a coded table in memory to the wide format (see :func:`read_coded`)."""
    if format not in ("auto", "wide", "long", "delimited"):
        raise DataError(f"Unknown coded-data format '{format}'. Use auto, wide, long or delimited.")
    if format in ("auto", "wide"):
        frame = frame.rename(columns=_label_columns(frame, codebook, (text_col, id_col)))
    if format == "auto":
        format = detect_format(frame, codebook, id_col, code_col)
    if format == "wide":
        return _from_wide(frame, codebook, text_col, id_col, source)
    column = code_col or next((c for c in ("codes", "code") if c in frame.columns), "codes")
    _require_columns(frame, [column], source, "Pass --code-col with the column that holds the codes.")
    lookup = code_lookup(codebook)
    if format == "long":
        return _from_long(frame, codebook, text_col, id_col, column, lookup, source)
    return _from_delimited(frame, codebook, text_col, id_col, column, lookup, source)


def _label_columns(frame: pd.DataFrame, codebook: Codebook, keep: Iterable[str]) -> dict[str, str]:
    """Code columns named by the code's label (any case or spacing) instead of its id: ``{column: id}``.

    A column is taken only where the code's id column is absent, and never one of ``keep``.
    """
    by_label = {" ".join(code.label.lower().split()): code.id for code in codebook.codes}
    renames: dict[str, str] = {}
    for column in frame.columns:
        code_id = by_label.get(" ".join(str(column).lower().split()))
        if code_id and column not in keep and code_id not in frame.columns and code_id not in renames.values():
            renames[column] = code_id
    return renames


def _parse_code_name(value: str, lookup: dict[str, str], codebook: Codebook, where: str) -> str:
    code_id = lookup.get(value.strip().lower())
    if code_id is None:
        raise DataError(
            f"{where}: unknown code '{value}'. Codes in {codebook.source or 'the codebook'}: {codebook.ids}. "
            f"Fix the label or add the code to the codebook."
        )
    return code_id


def _from_wide(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, source: str) -> pd.DataFrame:
    present = [c for c in codebook.ids if c in frame.columns]
    missing = [c for c in codebook.ids if c not in frame.columns]
    if not present:
        raise DataError(
            f"{source}: no code columns found. Expected one 0/1 column per code, named by its id {codebook.ids} "
            f"or label (wide format), or a 'codes' column (pass --code-col). Columns: {list(frame.columns)}."
        )
    if missing:
        raise DataError(
            f"{source}: code column(s) {missing} missing. A wide file needs one 0/1 column per code "
            f"in the codebook, named by its id or label; add them (0 where the code does not apply) or use the "
            f"right codebook."
        )
    out = check_responses(frame, text_col, id_col, source)
    for code_id in codebook.ids:
        out[code_id] = _parse_binary(out[code_id], code_id, source)
    return _order(out, codebook, text_col, id_col)


def _parse_binary(values: pd.Series, column: str, source: str) -> pd.Series:
    def parse(value: object, index: int) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return 0
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
        raise DataError(
            f"{source}: column '{column}', row {row_number(index)}: expected 0 or 1, found {value!r}."
        )

    return pd.Series([parse(v, i) for i, v in enumerate(values)], index=values.index, dtype="int64")


def _from_long(frame, codebook, text_col, id_col, column, lookup, source) -> pd.DataFrame:
    _require_columns(frame, [id_col, text_col], source, "Pass --id-col and --text-col.")
    frame = frame.copy()
    frame[id_col] = text_values(frame[id_col])
    frame[text_col] = text_values(frame[text_col])
    rows = []
    for index, (response_id, value) in enumerate(zip(frame[id_col], frame[column])):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
        code_id = _parse_code_name(text, lookup, codebook, f"{source}, row {row_number(index)}") if text else None
        rows.append((response_id, code_id))
    first = frame.drop(columns=[column]).drop_duplicates(subset=[id_col], keep="first")
    out = check_responses(first, text_col, id_col, source)
    position = {rid: i for i, rid in enumerate(out[id_col])}
    matrix = np.zeros((len(out), len(codebook)), dtype="int64")
    index_of = {c: j for j, c in enumerate(codebook.ids)}
    for response_id, code_id in rows:
        if code_id is not None:
            matrix[position[response_id], index_of[code_id]] = 1
    for j, code_id in enumerate(codebook.ids):
        out[code_id] = matrix[:, j]
    return _order(out, codebook, text_col, id_col)


def _from_delimited(frame, codebook, text_col, id_col, column, lookup, source) -> pd.DataFrame:
    out = check_responses(frame, text_col, id_col, source)
    index_of = {c: j for j, c in enumerate(codebook.ids)}
    matrix = np.zeros((len(out), len(codebook)), dtype="int64")
    for index, value in enumerate(out[column]):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        text = text.strip().strip("[]")
        for part in _DELIMITERS.split(text):
            part = part.strip().strip("'\"")
            if part:
                code_id = _parse_code_name(part, lookup, codebook, f"{source}, column '{column}', row {row_number(index)}")
                matrix[index, index_of[code_id]] = 1
    out = out.drop(columns=[column])
    for j, code_id in enumerate(codebook.ids):
        out[code_id] = matrix[:, j]
    return _order(out, codebook, text_col, id_col)


def _order(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str) -> pd.DataFrame:
    others = [c for c in frame.columns if c not in (id_col, text_col, *codebook.ids)]
    return frame[[id_col, text_col, *others, *codebook.ids]].reset_index(drop=True)


def combine_coded(frames: Sequence[pd.DataFrame], codebook: Codebook, id_col: str) -> tuple[pd.DataFrame, int]:
    """Stack coded tables; for a response id in several, the later table's codes win.

    Returns
    -------
    combined : DataFrame
        One row per response id, in order of first appearance.
    changed : int
        How many (response, code) labels a later table changed.
    """
    combined = frames[0]
    changed = 0
    for frame in frames[1:]:
        overlap = frame[frame[id_col].isin(combined[id_col])]
        if len(overlap):
            before = combined.set_index(id_col).loc[overlap[id_col], codebook.ids].to_numpy()
            changed += int((before != overlap[codebook.ids].to_numpy()).sum())
        kept = combined[~combined[id_col].isin(frame[id_col])]
        combined = pd.concat([kept, frame], ignore_index=True)
    return combined.reset_index(drop=True), changed


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
