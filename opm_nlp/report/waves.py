"""Change between survey waves: each code's share of answered respondents, tested wave against wave.

:func:`wave_tests` compares consecutive waves per code (two-proportion z-test, or Fisher's exact
test on small counts) and, with three or more waves, tests all waves at once (chi-square); p-values
are Holm-adjusted within each family of tests.

Those tests count codes as they stand: a person's codes where an answer was coded or reviewed, the
model's suggestions elsewhere. When one wave is mostly human-coded and the other mostly model-coded, a
change in who coded reads as a change in the respondents. So beside each test stand each wave's coder
mix (answers human-coded and model-only) and the difference of the two waves' estimates
(:mod:`opm_nlp.report.estimate`: prediction-powered with an audit, adjusted with the model's confusion
counts) with its 95% interval. Where the mixes differ by more than :data:`MIX_TOLERANCE`, the count test
is marked "not comparable (coder sources differ)" and the comparison rests on the estimates.

Examples
--------
>>> from opm_nlp.report.waves import wave_tests
>>> wave_tests(tagged, codebook, "answer", "wave")                                 # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.report.estimate import difference
from opm_nlp.report.prepost import holm
from opm_nlp.report.strata import estimates_by_group
from opm_nlp.report.tables import group_frequencies

#: Columns on the counts as they stand (a person's codes, else the model's suggestions).
COUNT_COLUMNS = ["code", "label", "comparison", "family", "wave_from", "wave_to", "answered_from", "pct_from",
                 "answered_to", "pct_to", "change_pp", "test", "statistic", "min_expected", "p_value", "p_holm"]
#: Columns beside the count test: each wave's coder mix, and the difference of the two waves' estimates.
ESTIMATE_COLUMNS = ["human_from", "model_only_from", "human_to", "model_only_to", "coder_sources", "method_from",
                    "estimate_pct_from", "method_to", "estimate_pct_to", "estimate_change_pp", "estimate_ci_low",
                    "estimate_ci_high", "compared_on"]
COLUMNS = COUNT_COLUMNS + ESTIMATE_COLUMNS
#: Two waves' coder sources differ when their shares of human-coded answers differ by more than this. The
#: raw change moves by (difference of the shares) x (the model's over- or under-count on the code): at 0.10
#: a model that over-counts a code by 20 points adds up to 2 points, about what the Wilson intervals of
#: waves of a few hundred answers cannot tell apart; beyond it the counts mix coder sources.
MIX_TOLERANCE = 0.10
NOT_COMPARABLE = "not comparable (coder sources differ)"
_NOT_TESTED = {"test": "not tested", "statistic": np.nan, "min_expected": np.nan, "p_value": np.nan}
_CORRECTED = {"prediction-powered", "adjusted", "human-coded"}


def wave_tests(table: pd.DataFrame, codebook: Codebook, text_col: str, wave: str, id_col: str | None = None,
               audit=None, trust: dict | None = None) -> pd.DataFrame:
    """Change in each code's share of answered respondents between waves, with tests.

    Consecutive waves are compared with the pooled two-proportion z-test, or Fisher's exact test when
    an expected count of the 2x2 table is below 5. With three or more waves, a chi-square test of
    homogeneity across all waves is added per code. p-values are Holm-adjusted within each family
    (all consecutive comparisons; all across-wave tests), since one report tests many codes at once.
    Respondents with an empty wave are left out.

    Each wave's estimates (:func:`opm_nlp.report.strata.estimates_by_group`, from the wave's own answers,
    reviewed answers and audit answers) are made about the population the wave samples
    (``finite_population=False``), as the count test is, and their difference has
    ``se = sqrt(se_from^2 + se_to^2)`` (independent waves; adjusted estimates share the model's confusion
    counts, which makes this conservative).

    Parameters
    ----------
    id_col : str, optional
        Response-id column (needed with ``audit``).
    audit : Audit, optional
        A random audit coded blind: prediction-powered estimates in the waves it covers.
    trust : dict, optional
        The model's trust figures: adjusted estimates where the audit does not reach.

    Returns
    -------
    DataFrame
        One row per code and comparison: code, label, comparison, wave_from, wave_to, answered_from,
        pct_from, answered_to, pct_to, change_pp (percentage points, to - from), test, statistic (by
        test: z, positive for a rise; the odds ratio of the later wave against the earlier; chi-square),
        min_expected, p_value, p_holm. A comparison that cannot be
        tested (a wave without answers, or the code in none or all answers) has test "not tested"; one
        whose waves' coder mixes differ has test :data:`NOT_COMPARABLE` and no p-value. Then
        :data:`ESTIMATE_COLUMNS`: answers human-coded and model-only in each wave, coder_sources ("same" or
        "differ"), each wave's estimate and method, the estimated change (to - from, points) with its 95%
        interval (consecutive waves), and compared_on: what the comparison rests on ("counts", "estimates",
        or "nothing comparable" when the mixes differ and a wave has model-only estimates).
    """
    long = group_frequencies(table, codebook, text_col, wave, include_missing=False)
    waves = list(dict.fromkeys(long[wave]))
    mix = long.drop_duplicates(wave).set_index(wave).loc[waves, ["answered", "answered_human", "answered_model_only"]]
    human_share = (mix["answered_human"] / mix["answered"].where(mix["answered"] > 0)).fillna(0).to_numpy()
    estimates, _ = estimates_by_group(table, codebook, text_col, id_col, wave, audit=audit, trust=trust,
                                      include_missing=False, finite_population=False)
    rows = []
    for code_id in codebook.ids:
        part = long[long["code"] == code_id].set_index(wave).loc[waves]
        counts, nobs = part["respondents"].to_numpy(int), part["answered"].to_numpy(int)
        pct = part["pct_of_answered"]
        base = {"code": code_id, "label": codebook[code_id].label}
        for i in range(len(waves) - 1):
            differ = abs(human_share[i] - human_share[i + 1]) > MIX_TOLERANCE
            test = _consecutive_test(counts[i], nobs[i], counts[i + 1], nobs[i + 1])
            rows.append({**base, "comparison": f"{waves[i]} → {waves[i + 1]}", "family": "consecutive",
                         "wave_from": waves[i], "wave_to": waves[i + 1], "answered_from": nobs[i],
                         "pct_from": pct.iloc[i], "answered_to": nobs[i + 1], "pct_to": pct.iloc[i + 1],
                         **(_not_comparable(test) if differ else test),
                         **_beside(mix, waves[i], waves[i + 1], differ, estimates, code_id)})
        if len(waves) >= 3:
            differ = bool((nobs > 0).any() and np.ptp(human_share[nobs > 0]) > MIX_TOLERANCE)
            test = _across_waves_test(counts, nobs)
            rows.append({**base, "comparison": f"all waves ({waves[0]}–{waves[-1]})", "family": "across all waves",
                         "wave_from": waves[0], "wave_to": waves[-1], "answered_from": nobs[0],
                         "pct_from": pct.iloc[0], "answered_to": nobs[-1], "pct_to": pct.iloc[-1],
                         **(_not_comparable(test) if differ else test),
                         **_beside(mix, waves[0], waves[-1], differ, None, code_id)})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.DataFrame(rows)
    out["change_pp"] = out["pct_to"] - out["pct_from"]
    out["p_holm"] = np.nan
    for family in out["family"].unique():
        mask = out["family"] == family
        out.loc[mask, "p_holm"] = holm(out.loc[mask, "p_value"].to_numpy(float))
    return out[COLUMNS]


def _not_comparable(test: dict) -> dict:
    """A count test between waves coded by different sources: kept out of the p-values (and of Holm's family)."""
    if test["test"] == "not tested":
        return test
    return {"test": NOT_COMPARABLE, "statistic": np.nan, "min_expected": test["min_expected"], "p_value": np.nan}


def _beside(mix: pd.DataFrame, first: str, second: str, differ: bool, estimates: dict | None, code_id: str) -> dict:
    """The columns beside a test: both waves' coder mix and, for consecutive waves, the estimated change."""
    out = {"human_from": int(mix.loc[first, "answered_human"]),
           "model_only_from": int(mix.loc[first, "answered_model_only"]),
           "human_to": int(mix.loc[second, "answered_human"]),
           "model_only_to": int(mix.loc[second, "answered_model_only"]),
           "coder_sources": "differ" if differ else "same"}
    a = (estimates or {}).get(first, {}).get(code_id)
    b = (estimates or {}).get(second, {}).get(code_id)
    if a is None or b is None:
        return {**out, "method_from": "", "estimate_pct_from": np.nan, "method_to": "", "estimate_pct_to": np.nan,
                "estimate_change_pp": np.nan, "estimate_ci_low": np.nan, "estimate_ci_high": np.nan,
                "compared_on": "nothing comparable" if differ else "counts"}
    change = difference(b, a)
    corrected = a.method in _CORRECTED and b.method in _CORRECTED
    return {**out, "method_from": a.method, "estimate_pct_from": 100 * a.estimate, "method_to": b.method,
            "estimate_pct_to": 100 * b.estimate, "estimate_change_pp": 100 * change.estimate,
            "estimate_ci_low": 100 * change.low, "estimate_ci_high": 100 * change.high,
            "compared_on": ("counts and estimates" if corrected else "counts") if not differ
            else "estimates" if corrected else "nothing comparable"}


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


def wave_tests_note(tests: pd.DataFrame, wave: str, n_waves: int) -> str:
    """What the wave-test table compares, for the report's note."""
    consecutive = tests["family"] == "consecutive"
    n_consecutive = int(tests["p_value"].notna()[consecutive].sum())
    n_overall = int(tests["p_value"].notna()[~consecutive].sum())
    n_flagged = int((tests["test"] == NOT_COMPARABLE).sum())
    several = n_waves >= 3
    return (f"The tests compare counts of codes as they stand (a person's codes where an answer was coded or "
            f"reviewed, the model's suggestions elsewhere): consecutive {wave}s per code with the two-proportion "
            f"z-test (Fisher's exact test when an expected count is below 5)"
            + (", and a chi-square test across all waves" if several else "")
            + f". Multiple comparisons: p_holm is Holm-adjusted within each family ({n_consecutive} consecutive "
            f"comparisons" + (f"; {n_overall} across-wave tests" if several else "") + "); with this many "
            "tests a raw p below 0.05 is expected by chance for some codes, so read p_holm. The statistic is z "
            "(positive for a rise), the odds ratio (later against earlier) or chi-square; a min_expected below 5 "
            f"makes a chi-square rough. Beside each test: each {wave}'s answers coded by a person (human) and with "
            f"model suggestions only, and the change in the estimates (each {wave}'s estimate from its own answers "
            f"and audit answers, with its method) with a 95% interval about the populations the {wave}s sample. "
            f"Where the share of human-coded answers differs by more than {100 * MIX_TOLERANCE:.0f} points between "
            f"two {wave}s, counts would read a change of coder as a change of respondents: the count test is marked "
            f"'{NOT_COMPARABLE}' ({n_flagged} here) and the comparison rests on the estimates (compared_on); "
            f"'nothing comparable' means a {wave} has model-only estimates: pass --audit (or --model) to correct them.")
