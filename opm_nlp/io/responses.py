"""Survey answers: one row per response, with an id column and a text column.

:func:`read_responses` reads a file of answers and :func:`check_responses` validates a table already in
memory: the id and text columns must exist, every id must be present and unique, and ids and answers
become stripped text (an empty answer stays ``""``; the spans columns ``evidence_spans`` and
``reviewed_spans`` must fit it and move with it); every other column is kept so it can be carried
through to outputs. Errors name the file, the column and the spreadsheet row. A file with no answers (a
header row alone) is an error, whatever its format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.columns import EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL
from opm_nlp.exceptions import DataError
from opm_nlp.io.paths import sheet_hint
from opm_nlp.io.spans import AROUND, read_spans, spans_after_removal
from opm_nlp.io.tables import read_table, require_columns, row_number, text_values

#: The columns of spans into the answer (:mod:`opm_nlp.io.spans`), and how a cell that does not fit is mended.
SPANS_COLUMNS = (EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL)
_SPANS_FIX = {EVIDENCE_SPANS_COL: "Tag the answers again with opm-nlp tag, or clear the cell.",
              REVIEWED_SPANS_COL: "Pull the review again with opm-nlp review pull, or clear the cell."}


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
        If the file has no rows, a column is missing, an id is empty or repeated.
    """
    frame = read_table(path, encoding=encoding)
    if frame.empty:
        raise DataError(f"{path}: no answers found (only a header?); expected one row per response.")
    return check_responses(frame, text_col, id_col, source=str(path))


def check_responses(frame: pd.DataFrame, text_col: str, id_col: str, source: str = "the table",
                    first_row: int = 0, spans: Sequence[str] = SPANS_COLUMNS) -> pd.DataFrame:
    """Validate and normalise an answers table already in memory (see :func:`read_responses`).

    ``first_row`` is the 0-based position of the frame's first row in its file, so that error
    messages give the file's row numbers when the file is read in chunks. The columns of ``spans``
    the table has must hold spans that fit their answer (:func:`check_spans`); tagging, which
    writes ``evidence_spans`` anew, checks ``reviewed_spans`` alone.

    Raises
    ------
    DataError
        If a column is missing, an id is empty or repeated, or a spans cell does not fit its answer.
    """
    if text_col == id_col:
        raise DataError(f"{source}: '{id_col}' is both the id and the answer column. Pass --id-col and "
                        f"--text-col with two different columns.")
    for column, hint in ((id_col, "Pass --id-col with the column that identifies each response."),
                         (text_col, "Pass --text-col with the column that holds the answers.")):
        if column not in frame.columns:
            require_columns(frame, [column], source, hint + sheet_hint(source))
    frame = frame.copy()
    frame[id_col] = text_values(frame[id_col])
    raw, frame[text_col] = frame[text_col], text_values(frame[text_col])
    check_ids(frame[id_col], id_col, source, first_row)
    for column in spans:
        if column in frame.columns:
            check_spans(frame, column, raw, text_col, id_col, source, first_row)
    for column in SPANS_COLUMNS:  # spans follow the answer as it is stripped
        if column in frame.columns:
            frame[column] = [spans_after_removal(cell, text, AROUND) if isinstance(text, str) else cell
                             for cell, text in zip(frame[column], raw)]
    return frame.reset_index(drop=True)


def check_spans(frame: pd.DataFrame, column: str, raw: pd.Series, text_col: str, id_col: str,
                source: str = "the table", first_row: int = 0) -> None:
    """Refuse a cell of spans column ``column`` that does not fit its answer in ``raw`` (as written).

    ``evidence_spans`` cells are read as ``{"code": [start, end]}``, ``reviewed_spans`` cells as
    ``{"code": [[start, end], ...]}`` (:func:`~opm_nlp.io.spans.read_spans`); empty cells pass.

    Raises
    ------
    DataError
        Naming the first bad cell's spreadsheet row and response id, what it should hold and what it holds,
        and how many more rows are bad.
    """
    nested = column == REVIEWED_SPANS_COL
    first, bad = "", []
    for position, (cell, text, written) in enumerate(zip(frame[column], raw, frame[text_col])):
        try:
            read_spans(cell, text if isinstance(text, str) else written, nested=nested)
        except ValueError as exc:
            first = first or str(exc)
            bad.append(position)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise DataError(f"{source}: column '{column}', row {row_number(first_row + bad[0])} (response id "
                        f"'{frame[id_col].iloc[bad[0]]}'){more}: {first}. {_SPANS_FIX[column]}")


def check_ids(ids: pd.Series, id_col: str, source: str = "the table", first_row: int = 0,
              guessed: bool = False) -> None:
    """Refuse empty or repeated response ids (``ids`` already as text, see :func:`text_values`).

    ``guessed``: the id column was not given but taken because it comes first, so the message says
    so and names ``--id-col``.

    Raises
    ------
    DataError
        Naming the first empty or repeated id and its spreadsheet rows (the first few of them).
    """
    guess = (f"{source}: column '{id_col}' was taken as the id column because it comes first, but "
             if guessed else f"{source}: ")
    fix = ("Pass --id-col with the column that identifies each response." if guessed
           else f"Ids in '{id_col}' must be unique.")
    empty = np.flatnonzero(ids.eq("").to_numpy())
    if len(empty):
        where = f"it is empty in row {_rows(first_row + empty, listed=1)}" if guessed else \
            f"column '{id_col}' is empty in row {_rows(first_row + empty, listed=1)}"
        raise DataError(f"{guess}{where}; every response needs an id.{' ' + fix if guessed else ''}")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        first = duplicated.iloc[0]
        rows = _rows(first_row + np.flatnonzero(ids.eq(first).to_numpy()), listed=_LISTED_ROWS, brackets=True)
        repeated = duplicated.nunique()
        raise DataError(f"{guess}response id '{first}' appears more than once (rows {rows})"
                        f"{f'; {repeated} ids are repeated' if repeated > 1 else ''}. {fix}")


#: Rows of a repeated id named in the message; the rest are counted (a wrong id column repeats in most rows).
_LISTED_ROWS = 5


def _rows(positions: np.ndarray, listed: int, brackets: bool = False) -> str:
    """``[2, 3, 4] and 126 more``: the spreadsheet rows of the first ``listed`` positions, and a count of
    the rest."""
    numbers = [row_number(i) for i in positions[:listed]]
    shown = str(numbers) if brackets else ", ".join(map(str, numbers))
    return shown + (f" and {len(positions) - listed} more" if len(positions) > listed else "")
