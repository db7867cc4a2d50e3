"""Change between survey waves: each code's share of answered respondents, tested wave against wave.

:func:`wave_tests` compares consecutive waves per code (two-proportion z-test, or Fisher's exact
test on small counts) and, with three or more waves, tests all waves at once (chi-square); p-values
are Holm-adjusted within each family of tests.

Examples
--------
>>> from opm_nlp.report.waves import wave_tests
>>> wave_tests(tagged, codebook, "answer", "wave")                                 # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.report.prepost import holm
from opm_nlp.report.tables import group_frequencies

COLUMNS = ["code", "label", "comparison", "family", "wave_from", "wave_to", "answered_from", "pct_from",
           "answered_to", "pct_to", "change_pp", "test", "statistic", "min_expected", "p_value", "p_holm"]
_NOT_TESTED = {"test": "not tested", "statistic": np.nan, "min_expected": np.nan, "p_value": np.nan}


def wave_tests(table: pd.DataFrame, codebook: Codebook, text_col: str, wave: str) -> pd.DataFrame:
    """Change in each code's share of answered respondents between waves, with tests.

    Consecutive waves are compared with the pooled two-proportion z-test, or Fisher's exact test when
    an expected count of the 2x2 table is below 5. With three or more waves, a chi-square test of
    homogeneity across all waves is added per code. p-values are Holm-adjusted within each family
    (all consecutive comparisons; all across-wave tests), since one report tests many codes at once.
    Respondents with an empty wave are left out.

    Returns
    -------
    DataFrame
        One row per code and comparison: code, label, comparison, wave_from, wave_to, answered_from,
        pct_from, answered_to, pct_to, change_pp (percentage points, to - from), test, statistic (by
        test: z, positive for a rise; the odds ratio of the later wave against the earlier; chi-square),
        min_expected, p_value, p_holm. A comparison that cannot be
        tested (a wave without answers, or the code in none or all answers) has test "not tested".
    """
    long = group_frequencies(table, codebook, text_col, wave, include_missing=False)
    waves = list(dict.fromkeys(long[wave]))
    rows = []
    for code_id in codebook.ids:
        part = long[long["code"] == code_id].set_index(wave).loc[waves]
        counts, nobs = part["respondents"].to_numpy(int), part["answered"].to_numpy(int)
        pct = part["pct_of_answered"]
        base = {"code": code_id, "label": codebook[code_id].label}
        for i in range(len(waves) - 1):
            rows.append({**base, "comparison": f"{waves[i]} → {waves[i + 1]}", "family": "consecutive",
                         "wave_from": waves[i], "wave_to": waves[i + 1], "answered_from": nobs[i],
                         "pct_from": pct.iloc[i], "answered_to": nobs[i + 1], "pct_to": pct.iloc[i + 1],
                         **_consecutive_test(counts[i], nobs[i], counts[i + 1], nobs[i + 1])})
        if len(waves) >= 3:
            rows.append({**base, "comparison": f"all waves ({waves[0]}–{waves[-1]})", "family": "across all waves",
                         "wave_from": waves[0], "wave_to": waves[-1], "answered_from": nobs[0],
                         "pct_from": pct.iloc[0], "answered_to": nobs[-1], "pct_to": pct.iloc[-1],
                         **_across_waves_test(counts, nobs)})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.DataFrame(rows)
    out["change_pp"] = out["pct_to"] - out["pct_from"]
    out["p_holm"] = np.nan
    for family in out["family"].unique():
        mask = out["family"] == family
        out.loc[mask, "p_holm"] = holm(out.loc[mask, "p_value"].to_numpy(float))
    return out[COLUMNS]


def _consecutive_test(a: int, n1: int, b: int, n2: int) -> dict:
    """Test of ``a`` of ``n1`` (earlier wave) against ``b`` of ``n2`` (later): z-test, or Fisher's on small counts."""
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import proportions_ztest

    if n1 == 0 or n2 == 0 or a + b == 0 or a + b == n1 + n2:
        return dict(_NOT_TESTED)
    grid = np.array([[b, n2 - b], [a, n1 - a]], dtype=float)  # odds ratio: later wave vs earlier
    expected = grid.sum(axis=1, keepdims=True) * grid.sum(axis=0, keepdims=True) / grid.sum()
    if expected.min() < 5:
        odds, p_value = fisher_exact(grid.astype(int), alternative="two-sided")
        return {"test": "Fisher's exact", "statistic": float(odds), "min_expected": float(expected.min()),
                "p_value": float(p_value)}
    z, p_value = proportions_ztest([b, a], [n2, n1], alternative="two-sided")
    return {"test": "two-proportion z", "statistic": float(z), "min_expected": float(expected.min()),
            "p_value": float(p_value)}


def _across_waves_test(counts: np.ndarray, nobs: np.ndarray) -> dict:
    """Chi-square test of homogeneity of ``counts`` of ``nobs`` across the waves that have answers."""
    from scipy.stats import chi2_contingency

    keep = nobs > 0
    total = counts[keep].sum()
    if keep.sum() < 2 or total == 0 or total == nobs[keep].sum():
        return dict(_NOT_TESTED)
    chi2, p_value, dof, expected = chi2_contingency(
        np.vstack([counts[keep], nobs[keep] - counts[keep]]), correction=False)
    return {"test": f"chi-square ({dof} df)", "statistic": float(chi2), "min_expected": float(np.min(expected)),
            "p_value": float(p_value)}
