"""Theme frequencies: how many respondents carry each code (the short form of the report's table)."""

from __future__ import annotations

import pandas as pd

from opm_nlp.codebook.codes import Codebook


def theme_frequencies(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents per code, as in the OPM study's table (unique respondents per category).

    The counts are :func:`opm_nlp.report.build.frequency_table`'s, without intervals or provenance.

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
        Index: code ids. Columns: label, respondents, pct_of_answered, pct_of_all (rounded to 0.1).
    """
    from opm_nlp.report.build import frequency_table

    full = frequency_table(table, codebook, text_col)
    out = full[["label", "respondents", "pct_of_answered", "pct_of_all"]].copy()
    out[["pct_of_answered", "pct_of_all"]] = out[["pct_of_answered", "pct_of_all"]].fillna(0).round(1)
    out.index.name = "code"
    return out
