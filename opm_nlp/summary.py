"""Theme frequencies: how many respondents carry each code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook import Codebook


def theme_frequencies(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents per code, as in the OPM study's table (unique respondents per category).

    Parameters
    ----------
    table : DataFrame
        Tagged or coded answers in the wide format (one row per respondent, one 0/1 column per code).
    codebook : Codebook
        The codes, in the order to report them.
    text_col : str
        Answer column; respondents with an empty answer count in "% of all" but not "% of answered".

    Returns
    -------
    DataFrame
        Index: code ids. Columns: label, respondents, pct_of_answered, pct_of_all.
    """
    answered = table[text_col].fillna("").astype(str).str.strip().ne("").to_numpy()
    counts = table[codebook.ids].to_numpy(dtype=int)[answered].sum(axis=0)
    n_answered, n_all = int(answered.sum()), len(table)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "label": [codebook[c].label for c in codebook.ids],
            "respondents": counts,
            "pct_of_answered": np.round(100 * counts / max(n_answered, 1), 1),
            "pct_of_all": np.round(100 * counts / max(n_all, 1), 1),
        }, index=pd.Index(codebook.ids, name="code"))
