"""Which rows of a reviewed table carry human codes, and what the model had suggested there.

A *reviewed* table is the wide house format (one 0/1 column per code id) with the provenance columns
of :mod:`opm_nlp.columns`; only rows with ``reviewed`` = 1 carry a person's decision, the others the
model's suggestion. Training and evaluation keep only the reviewed rows (:func:`keep_reviewed`); the
review tools (:mod:`opm_nlp.review`) compare them with the suggestion.

Examples
--------
>>> from opm_nlp.model.reviewed import keep_reviewed
>>> kept, left_out, edited = keep_reviewed(reviewed, codebook, "review.xlsx")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import REVIEWED_COL, SUGGESTED_COL
from opm_nlp.exceptions import ReviewError
from opm_nlp.codebook.coded import code_lookup, parse_binary
from opm_nlp.io.tables import row_number


def split_codes(value: object, codebook: Codebook, where: str = "suggested_codes") -> list[str]:
    """Code ids from a ``"a; b"`` cell (ids or labels, separated by ``;``, ``,`` or ``|``)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    lookup = code_lookup(codebook)
    out = []
    for part in str(value).replace("|", ";").replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        code_id = lookup.get(part.lower())
        if code_id is None:
            raise ReviewError(f"{where}: unknown code '{part}'; the codebook has {codebook.ids}. "
                              f"Use the codebook the answers were tagged with.")
        out.append(code_id)
    return out


def suggestion_matrix(frame: pd.DataFrame, codebook: Codebook, source: str = "the table") -> np.ndarray:
    """The model's suggestion (n_answers, n_codes) 0/1, read from the ``suggested_codes`` column."""
    if SUGGESTED_COL not in frame.columns:
        raise ReviewError(f"{source}: no '{SUGGESTED_COL}' column, so the model's suggestion is unknown. "
                          f"Expected a file from opm-nlp review pull or review sheet.")
    index = {c: j for j, c in enumerate(codebook.ids)}
    matrix = np.zeros((len(frame), len(codebook)), dtype=int)
    for i, value in enumerate(frame[SUGGESTED_COL].tolist()):
        for code_id in split_codes(value, codebook, f"{source}, column '{SUGGESTED_COL}', row {row_number(i)}"):
            matrix[i, index[code_id]] = 1
    return matrix


def reviewed_mask(frame: pd.DataFrame, source: str = "the table") -> np.ndarray:
    """Boolean array: True where ``reviewed`` is 1 (blank counts as not reviewed).

    Raises
    ------
    DataError
        If a ``reviewed`` cell is neither 0/1 nor blank (nor yes/no, true/false, x).
    """
    if REVIEWED_COL not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return parse_binary(frame[REVIEWED_COL].reset_index(drop=True), REVIEWED_COL, source).to_numpy() == 1


def keep_reviewed(frame: pd.DataFrame, codebook: Codebook, source: str = "the table") -> tuple[pd.DataFrame, int, int]:
    """Drop rows no person has reviewed from a coded table, so they are never taken as human codes.

    A table without a ``reviewed`` column is returned unchanged. In a review file, rows with
    ``reviewed`` 0 or blank hold the model's suggestion, not a person's decision.

    Returns
    -------
    kept : DataFrame
        The reviewed rows.
    left_out : int
        Rows dropped.
    edited_unmarked : int
        Of those, rows whose codes differ from ``suggested_codes``: someone edited them but did
        not mark them reviewed (worth telling the user).
    """
    if REVIEWED_COL not in frame.columns:
        return frame, 0, 0
    mask = reviewed_mask(frame, source)
    edited = 0
    if SUGGESTED_COL in frame.columns and (~mask).any():
        suggested = suggestion_matrix(frame, codebook, source)
        codes = frame[codebook.ids].to_numpy(dtype=int)  # read_coded has parsed them
        edited = int(((codes != suggested).any(axis=1) & ~mask).sum())
    return frame[mask].reset_index(drop=True), int((~mask).sum()), edited
