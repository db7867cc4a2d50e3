"""Survey answers: one row per response, with an id column and a text column.

:func:`read_responses` reads a file of answers and :func:`check_responses` validates a table already
in memory: the id and text columns must exist, every id must be present and unique, and ids and
answers become stripped text (an empty answer stays ``""``); every other column is kept so it can
be carried through to outputs. Errors name the file, the column and the spreadsheet row. A file with
no answers (a header row alone) is an error, whatever its format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.exceptions import DataError
from opm_nlp.io.tables import read_table, require_columns, row_number, text_values


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
                    first_row: int = 0) -> pd.DataFrame:
    """Validate and normalise an answers table already in memory (see :func:`read_responses`).

    ``first_row`` is the 0-based position of the frame's first row in its file, so that error
    messages give the file's row numbers when the file is read in chunks.
    """
    require_columns(frame, [id_col], source, "Pass --id-col with the column that identifies each response.")
    require_columns(frame, [text_col], source, "Pass --text-col with the column that holds the answers.")
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
