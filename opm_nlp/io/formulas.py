"""Text in tables opm-nlp writes: shown by a spreadsheet, never run by it as a formula.

A spreadsheet runs a cell as a formula when its text starts with ``=``, ``+``, ``-`` or ``@`` (and
some also after a tab or carriage return), so an answer such as ``=HYPERLINK(...)`` or
``+cmd|' /C calc'!A0`` could run when a file is opened (CSV injection, OWASP). The rule, for cells
and column names alike:

- **CSV / TSV** (text, no cell types): a text cell that starts with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return gets a ``'`` in front (OWASP's advice), unless it is a plain number such as ``-3``,
  ``+1.5`` or ``1e-3`` (a number is not a formula). So that reading back is unambiguous, a text cell
  that starts with ``'`` followed by one of those characters or by another ``'`` gets one more ``'``.
  Reading a CSV file removes one leading ``'`` when the next character is ``=``, ``+``, ``-``,
  ``@``, tab, carriage return or ``'`` (:func:`unescape_formula`); any other text is read as it is.
  Numeric columns are written as numbers.
- **XLSX**: text is stored in text cells (never formula cells), marked with Excel's quote prefix so
  that editing the cell keeps it text; nothing is added to the text. XML cannot hold the control
  characters U+0000–U+0008, U+000B, U+000C, U+000E–U+001F (and U+FFFE, U+FFFF); they are removed,
  with a warning (:func:`append_frame`). Tab, line feed and carriage return are kept.
- **Parquet** is typed: text is stored as text, unchanged.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ESCAPED = re.compile(r"'[=+\-@\t\r']")
_STARTS_ESCAPED = re.compile(r"[=+\-@\t\r']")  # how every text that escape_formula changes starts
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape_formula(text: str) -> str:
    """``text`` as a CSV cell that no spreadsheet runs as a formula (see the module docstring).

    Examples
    --------
    >>> escape_formula("=1+1"), escape_formula("-3"), escape_formula("'=x"), escape_formula("it's")
    ("'=1+1", '-3', "''=x", "it's")
    """
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    if _ESCAPED.match(text):
        return "'" + text
    return text


def unescape_formula(text: str) -> str:
    """A CSV cell's text as it was before :func:`escape_formula`.

    Examples
    --------
    >>> unescape_formula("'=1+1"), unescape_formula("''=x"), unescape_formula("'quoted'")
    ('=1+1', "'=x", "'quoted'")
    """
    return text[1:] if _ESCAPED.match(text) else text


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` to write as CSV: text cells and column names through :func:`escape_formula`.

    Numeric, boolean and date columns are unchanged, so a negative number stays a number.
    """
    columns = [escape_formula(str(c)) for c in frame.columns]
    data = {}
    for j in range(frame.shape[1]):
        values = frame.iloc[:, j]
        if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype)):
            values = _through(values, _STARTS_ESCAPED, escape_formula)
        data[j] = values
    out = pd.DataFrame(data, index=frame.index)
    out.columns = columns
    return out


def unescape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV file's table (read as text) with cells and column names through :func:`unescape_formula`."""
    frame.columns = [unescape_formula(c) if isinstance(c, str) else c for c in frame.columns]
    for j in range(frame.shape[1]):
        values = frame.iloc[:, j]
        changed = _through(values, _ESCAPED, unescape_formula)
        if changed is not values:
            frame.isetitem(j, changed)
    return frame


def _through(values: pd.Series, start: re.Pattern, change) -> pd.Series:
    """``values`` with ``change`` applied to the text cells that ``start`` matches (the same object if none).

    The match runs vectorised, so the Python-level change touches only the few cells that need it.
    """
    if values.dtype == object:
        candidates = values.map(lambda v: isinstance(v, str) and start.match(v) is not None).astype(bool)
    else:
        try:
            candidates = values.str.match(start.pattern, na=False).astype(bool)
        except (AttributeError, TypeError):  # not a column of text (categories of numbers, periods...)
            return values
    if not candidates.any():
        return values
    dtype = values.dtype
    values = values.astype(object)  # room for the changed text whatever the column's dtype
    values[candidates] = values[candidates].map(change)
    return values.astype(dtype) if isinstance(dtype, pd.StringDtype) else values


def xlsx_value(value: object) -> object:
    """A DataFrame cell as a value openpyxl stores: ``None`` for missing, Python scalars, lists joined."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return "; ".join(map(str, value))
    return value


def append_frame(sheet, frame: pd.DataFrame, header: bool = True, answer_col: str | None = None) -> Counter:
    """Append ``frame`` (its column names first, if ``header``) to an openpyxl worksheet, text as text.

    Works on ordinary and write-only worksheets. Text that starts like a formula is stored in a text
    cell with the quote prefix; characters XML cannot hold are removed. ``answer_col`` names the column
    the spans columns (``evidence_spans``, ``reviewed_spans``) point into: where its text loses
    characters, they are moved so that they still point at the same words.

    Returns
    -------
    Counter
        Column name -> how many of its cells (header included) lost characters; pass it to
        :func:`warn_removed_characters`.
    """
    removed: Counter = Counter()
    frame = _spans_for_xml(frame, answer_col)
    names = [str(c) for c in frame.columns]
    if header:
        sheet.append([_text_cell(sheet, name, name, removed) for name in names])
    for row in frame.itertuples(index=False, name=None):
        sheet.append([_text_cell(sheet, value, name, removed) for value, name in zip(map(xlsx_value, row), names)])
    return removed


def spans_for_xlsx(cell, text: object) -> object:
    """A spans cell of ``text`` (:func:`~opm_nlp.io.spans.spans_after_removal`) moved to ``text`` as an XLSX
    cell holds it, without the characters XML cannot hold, so that it points at the same words."""
    from opm_nlp.io.spans import spans_after_removal

    return spans_after_removal(cell, text, _NOT_IN_XML) if isinstance(text, str) else cell


def _spans_for_xml(frame: pd.DataFrame, answer_col: str | None) -> pd.DataFrame:
    """``frame`` with its spans cells moved to the answers as XLSX holds them (see :func:`append_frame`)."""
    from opm_nlp.columns import EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL

    columns = [c for c in (EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL) if c in frame.columns]
    if answer_col is None or answer_col not in frame.columns or not columns:
        return frame
    texts = frame[answer_col]
    rows = np.flatnonzero(texts.map(lambda v: isinstance(v, str) and _NOT_IN_XML.search(v) is not None).to_numpy(bool))
    if not len(rows):
        return frame
    frame = frame.copy()
    for column in columns:
        values = frame[column].astype(object).to_numpy(copy=True)
        for row in rows:
            values[row] = spans_for_xlsx(values[row], texts.iloc[row])
        frame[column] = values
    return frame


def _text_cell(sheet, value: object, column: str, removed: Counter) -> object:
    if not isinstance(value, str):
        return value
    clean = _NOT_IN_XML.sub("", value)
    if clean != value:
        removed[column] += 1
    if not clean.startswith(FORMULA_PREFIXES):
        return clean
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=clean)
    cell.data_type = "s"  # openpyxl makes text starting with '=' a formula cell
    cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
    return cell


def warn_removed_characters(removed: Counter, sheet: str) -> None:
    """Warn (once, naming the columns) that characters XLSX cannot hold were removed from a sheet."""
    if not removed:
        return
    warnings.warn(
        f"Sheet '{sheet}': removed control characters that XLSX cannot hold (U+0000-U+001F other than tab, "
        f"line feed and carriage return) from {sum(removed.values())} cell(s) of column(s) {sorted(removed)}. "
        f"Write .csv or .parquet to keep them.", UserWarning, stacklevel=3)
