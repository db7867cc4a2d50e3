"""Answers coded against a codebook: read in any layout, brought to the wide house format.

Coded data comes *wide* (one 0/1 column per code id or label, the house format), *long* (one row per
response and code) or *delimited* (one column of code ids or labels separated by ``;``, ``,`` or
``|``); :func:`read_coded` and :func:`to_wide` turn each into one row per response with one 0/1
integer column per code, in codebook order, and :func:`combine_coded` stacks several such tables.
:func:`default_columns` is the one rule for which columns hold the id and the answer when none are
given: the first and the second, never a code or score column.

Examples
--------
>>> from opm_nlp.codebook.coded import read_coded
>>> coded = read_coded("examples/opm_coded_illustrative.csv", codebook, "answer", "response_id")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import SCORE_PREFIX
from opm_nlp.exceptions import DataError
from opm_nlp.io.paths import sheet_hint
from opm_nlp.io.responses import check_ids, check_responses
from opm_nlp.io.tables import cell_text, closest_name, read_table, require_columns, row_number, text_values

_TRUE = {"1", "1.0", "true", "yes", "y", "x"}
_FALSE = {"0", "0.0", "false", "no", "n", ""}
_DELIMITERS = re.compile(r"\s*[;,|]\s*")
_LISTED = 10  # unknown codes named in one error; rows named per code
_ROWS = 3


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
    sheet: str | None = None,
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
    sheet : str, optional
        Worksheet of an XLSX file (default: the first).

    Returns
    -------
    DataFrame
        One row per response: ``id_col``, ``text_col``, the other columns of the file, then one 0/1
        integer column per code id, in codebook order.
    """
    frame = read_table(path, encoding=encoding, sheet=sheet)
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
    require_columns(frame, [column], source, "Pass --code-col with the column that holds the codes.")
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


def _unknown_codes_error(unknown: dict[str, list[int]], codebook: Codebook, where: str) -> DataError:
    """One error naming every unknown code (``{code: [0-based rows]}``), its rows and the closest code."""
    names = [*codebook.ids, *(code.label for code in codebook.codes)]
    listed = []
    for value, rows in list(unknown.items())[:_LISTED]:
        shown = ", ".join(str(row_number(i)) for i in rows[:_ROWS])
        more = f" and {len(rows) - _ROWS} more" if len(rows) > _ROWS else ""
        match = closest_name(value, names)
        hint = f"; did you mean '{match}'?" if match is not None else ""
        listed.append(f"'{value}' (row{'s' if len(rows) > 1 else ''} {shown}{more}{hint})")
    more = f" and {len(unknown) - _LISTED} more" if len(unknown) > _LISTED else ""
    return DataError(
        f"{where}: unknown code{'s' if len(unknown) > 1 else ''} {', '.join(listed)}{more}. Codes in "
        f"{codebook.source or 'the codebook'}: {codebook.ids}. Fix the labels or add the codes to the codebook."
    )


def _look_alike_columns(frame: pd.DataFrame, codebook: Codebook, missing: list[str], keep: Iterable[str]) -> str:
    """A sentence naming the file's columns that look like a missing code's id or label, or ``""``."""
    names = [*missing, *(code.label for code in codebook.codes if code.id in missing)]
    pairs = []
    for column in frame.columns:
        if column in keep or column in codebook.ids or str(column).startswith(SCORE_PREFIX):
            continue
        match = closest_name(str(column), names)
        if match is not None:
            pairs.append(f"'{column}' (did you mean '{match}'?)")
    return f" Columns that look like misspelt codes: {', '.join(pairs)}." if pairs else ""


def _from_wide(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, source: str) -> pd.DataFrame:
    present = [c for c in codebook.ids if c in frame.columns]
    missing = [c for c in codebook.ids if c not in frame.columns]
    alike = _look_alike_columns(frame, codebook, missing, (text_col, id_col)) if missing else ""
    if not present:
        raise DataError(
            f"{source}: no code columns found.{alike} Expected one 0/1 column per code, named by its id "
            f"{codebook.ids} or label (wide format), or a 'codes' column (pass --code-col). "
            f"Columns: {list(frame.columns)}.{sheet_hint(source)}"
        )
    if missing:
        raise DataError(
            f"{source}: code column(s) {missing} missing.{alike} A wide file needs one 0/1 column per code "
            f"in the codebook, named by its id or label; add them (0 where the code does not apply) or use the "
            f"right codebook."
        )
    out = check_responses(frame, text_col, id_col, source)
    for code_id in codebook.ids:
        out[code_id] = parse_binary(out[code_id], code_id, source)
    return _order(out, codebook, text_col, id_col)


def parse_binary(values: pd.Series, column: str, source: str) -> pd.Series:
    """A column of 0/1 cells as integers; a cell that is neither is one clear error.

    Besides ``0`` and ``1``: ``1.0``/``0.0``, ``true``/``false``, ``yes``/``no``, ``y``/``n`` and ``x``
    (any case), booleans, and an empty or missing cell as 0.

    Raises
    ------
    DataError
        Naming ``source``, ``column`` and the spreadsheet row of the first bad cell.
    """

    def parse(value: object, index: int) -> int:
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        text = cell_text(value).lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
        raise DataError(
            f"{source}: column '{column}', row {row_number(index)}: expected 0 or 1, found {value!r}."
        )

    return pd.Series([parse(v, i) for i, v in enumerate(values)], index=values.index, dtype="int64")


def _from_long(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, column: str,
               lookup: dict[str, str], source: str) -> pd.DataFrame:
    require_columns(frame, [id_col, text_col], source, "Pass --id-col and --text-col.")
    frame = frame.copy()
    frame[id_col] = text_values(frame[id_col])
    frame[text_col] = text_values(frame[text_col])
    rows = []
    unknown: dict[str, list[int]] = {}
    for index, (response_id, text) in enumerate(zip(frame[id_col], text_values(frame[column]))):
        code_id = lookup.get(text.lower()) if text else None
        if text and code_id is None:
            unknown.setdefault(text, []).append(index)
        rows.append((response_id, code_id))
    if unknown:
        raise _unknown_codes_error(unknown, codebook, f"{source}, column '{column}'")
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


def _from_delimited(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, column: str,
                    lookup: dict[str, str], source: str) -> pd.DataFrame:
    out = check_responses(frame, text_col, id_col, source)
    index_of = {c: j for j, c in enumerate(codebook.ids)}
    matrix = np.zeros((len(out), len(codebook)), dtype="int64")
    unknown: dict[str, list[int]] = {}
    for index, value in enumerate(text_values(out[column])):
        text = value.strip("[]")
        for part in _DELIMITERS.split(text):
            part = part.strip().strip("'\"")
            if not part:
                continue
            code_id = lookup.get(part.lower())
            if code_id is None:
                rows = unknown.setdefault(part, [])
                if not rows or rows[-1] != index:  # a code repeated in one cell is one row
                    rows.append(index)
            else:
                matrix[index, index_of[code_id]] = 1
    if unknown:
        raise _unknown_codes_error(unknown, codebook, f"{source}, column '{column}'")
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


def default_columns(frame: pd.DataFrame, codebook: Codebook, text_col: str | None, id_col: str | None,
                    source: str = "the table", format: str = "auto", code_col: str | None = None) -> tuple[str, str]:
    """The text and id columns, defaulting to the layout opm-nlp writes: id first, text second.

    ``opm-nlp tag`` and the coded-data readers put the response id first and the answer second, so a
    file from them needs no column options. A column (given or defaulted) that is a code or score
    column is refused rather than guessed past, and so is a defaulted id column with empty or
    repeated ids (unless ``format`` and ``code_col``, as for :func:`to_wide`, make the table long).

    Returns
    -------
    text_col, id_col : str

    Raises
    ------
    DataError
        If a default is needed and the table has fewer than two columns, a column holds codes or
        scores, or a defaulted id column does not identify the rows.
    """
    columns = [str(c) for c in frame.columns]
    if (text_col is None or id_col is None) and len(columns) < 2:
        raise DataError(f"{source}: expected at least an id and a text column, found {columns}. "
                        f"Pass --id-col and --text-col.{sheet_hint(source)}")
    guessed = id_col is None
    id_col = id_col if id_col is not None else columns[0]
    text_col = text_col if text_col is not None else columns[1]
    for column, what, option in ((id_col, "id", "--id-col"), (text_col, "answer", "--text-col")):
        if column in codebook.ids or column.startswith(SCORE_PREFIX):
            raise DataError(f"{source}: column '{column}' holds codes or scores, so it cannot be the {what} column "
                            f"(the file does not start with the id and the answer). Pass {option}.")
    if guessed and (format if format != "auto" else detect_format(frame, codebook, id_col, code_col)) != "long":
        check_ids(text_values(frame[id_col]), id_col, source, guessed=True)
    return text_col, id_col
