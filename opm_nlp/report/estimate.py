"""Theme prevalence that carries the model's error: prediction-powered and adjusted estimates.

Per code, the share of the answered respondents whose answer carries the code, with a 95% interval that
stays valid when the model is wrong. Three kinds of answers make up a wave of N answers:

- **reviewed** (R): a person confirmed or corrected the codes, picked by uncertainty (not at random);
  their human codes count as they are;
- **audit**: a simple random sample of the other answers U, coded blind (:data:`opm_nlp.columns.AUDIT_COL`);
- the rest of U, which carries the model's scores only.

The estimate is ``p = (sum_R y + |U| p_U) / N``; only ``p_U`` is estimated, so its interval is scaled by
``|U| / N``.

**Prediction-powered estimate of p_U** (Angelopoulos et al. 2023): the model's mean over U, corrected by
its error measured on the audit. With ``f`` the model's score and ``y`` the human code (0/1),
``p_U = mean_U f - mean_audit (f - y)``. The target is *this wave*: every answer of U has a score, so
``mean_U f`` is known exactly, and the audit is a sample without replacement from the finite set U. This
is the survey *difference estimator*; its design variance carries the finite-population correction:
``se^2 = (1 - n/|U|) var_audit(f - y) / n``. (``finite_population=False`` gives the superpopulation form of
``ppi_py``, adding ``var_U(f) / |U|``, for intervals about a population the wave is a random sample of.)

**Choice of estimator, by simulation** (``bench/bench_coverage.py``, docs/benchmarks.md): on the NHS test
split (31 codes, a frozen model trained on train.csv), audits of 50, 100 and 200 answers drawn 200 times
each, the share of 95% intervals containing the true prevalence was measured for plain PPI (lambda = 1)
and PPI++ power tuning (lambda clipped to [0, 1]), with scores and with 0/1 suggestions, with and without
pseudo-counts. The defaults below are the variant that reached the 0.93 target at every size with the
narrowest intervals, with a margin: plain PPI on scores (narrower than on 0/1 suggestions at the same
coverage), with 0.5 pseudo-answers; see :data:`PSEUDO_COUNT` and :data:`POWER_TUNING` for the figures.

**Small audits and rare codes.** An audit with no positive of a rare code sees no model error, so
``var(f - y)`` collapses and the interval shrinks to a point around a biased figure. The audit term gets
pseudo-counts: :data:`PSEUDO_COUNT` pseudo-answers, half coded 1 and half coded 0, each with the model's
mean score over U (what the model says of an answer drawn at random). They enter the variance only: the
centre stays the unbiased difference estimate.

**Without an audit** (:func:`adjusted`), adjusted classify-and-count (Forman 2008) corrects the model's
0/1 share by its sensitivity and specificity from held-out (else cross-validated) confusion counts; it
rests on the assumption that the wave's errors look like those, and :func:`audit_size_for` says how large
an audit would make the figure reportable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from opm_nlp.exceptions import DataError

#: Pseudo-answers added to the audit's variance term (half coded 1, half 0, at the model's mean score).
#: bench/bench_coverage.py, NHS test split, pooled coverage at audits of 50/100/200: none 0.75/0.84/0.89;
#: 0.25 0.944/0.951/0.935 (too close to the 0.93 target to trust elsewhere); 0.5 0.974/0.963/0.948.
PSEUDO_COUNT = 0.5
#: PPI++ power tuning covered less than plain PPI at every pseudo-count weight for about the same width
#: (0.5 pseudo-answers: 0.916/0.908/0.905), so plain PPI (lambda = 1) is the default.
POWER_TUNING = False
#: Draws of the parametric bootstrap behind :func:`adjusted` intervals (fixed seed: same input, same interval).
BOOTSTRAP_DRAWS = 4000

METHODS = ("prediction-powered", "adjusted", "human-coded", "model-only")


@dataclass(frozen=True)
class Interval:
    """A proportion with its interval (all in [0, 1])."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """One code's prevalence among the answered respondents of a wave or subgroup.

    Attributes
    ----------
    estimate, low, high : float
        The proportion and its interval.
    method : str
        ``"prediction-powered"``, ``"adjusted"``, ``"human-coded"`` or ``"model-only"``.
    n_answered, n_reviewed, n_audit : int
        Answers in all, answers people reviewed (counted as coded), audit answers.
    effective_n : float or None
        The audit size a classical (audit-only) interval would need for the same width: what the model was
        worth in hand-coded answers. About the wave (finite-population correction), the m with
        ``var(y) * (1/m - 1/|U|) = se_U ** 2``, at most the |U| answers nobody reviewed; else
        ``n * (se_classical / se) ** 2``.
    se : float
        Standard error of ``estimate`` (for differences between independent strata).
    classical : Interval or None
        Audit-only estimate (Wilson interval over the audit, the reviewed part known).
    model_only : Interval or None
        Mean of the model's figures over all answers, with a Wilson interval as if they were true.
    """

    estimate: float
    low: float
    high: float
    method: str
    n_answered: int
    n_reviewed: int = 0
    n_audit: int = 0
    effective_n: float | None = None
    se: float = float("nan")
    classical: Interval | None = None
    model_only: Interval | None = None


@lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(count: float, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for ``count`` successes out of ``n`` (``count`` may be fractional)."""
    if n <= 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    z, p = _z(confidence), count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _weighted_var(values: np.ndarray, weights: np.ndarray) -> float:
    """Variance with weights that count answers; divides by the total weight, as ``ppi_py`` and the PPI papers."""
    total = weights.sum()
    if total <= 0:
        return 0.0
    mean = np.sum(weights * values) / total
    return float(np.sum(weights * (values - mean) ** 2) / total)


def _as_arrays(scores, labels, audit, reviewed) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    a = np.asarray(audit, dtype=bool)
    r = np.zeros(len(f), bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
    if not (len(f) == len(y) == len(a) == len(r)):
        raise DataError(f"Scores, labels, audit and reviewed masks must have one entry per answer; got lengths "
                        f"{len(f)}, {len(y)}, {len(a)}, {len(r)}.")
    if np.any(a & r):
        raise DataError(f"{int(np.sum(a & r))} answer(s) are both in the audit and reviewed; an audit is drawn "
                        f"from the answers nobody reviewed. Take them out of the audit.")
    if np.any(np.isnan(f[~r])) or np.any((f[~r] < 0) | (f[~r] > 1)):
        raise DataError("Model scores must lie in [0, 1] for every answer that is not reviewed.")
    known = a | r
    if np.any(np.isnan(y[known])) or np.any(~np.isin(y[known], (0, 1))):
        raise DataError("Every audit and reviewed answer needs a human code of 0 or 1.")
    return f, y, a, r


def prediction_powered(scores, labels, audit, reviewed=None, confidence: float = 0.95, *,
                       power_tuning: bool = POWER_TUNING, pseudo: float = PSEUDO_COUNT,
                       finite_population: bool = True) -> Estimate:
    """Prediction-powered prevalence of one code among ``N`` answered answers.

    Parameters
    ----------
    scores : array of shape (N,)
        The model's score (or 0/1 suggestion) for every answer, in [0, 1].
    labels : array of shape (N,)
        Human code 0/1 where known (audit and reviewed answers), NaN elsewhere.
    audit : bool array of shape (N,)
        The random audit sample, coded blind, drawn from the answers nobody reviewed.
    reviewed : bool array of shape (N,), optional
        Answers people reviewed: their codes count as they are; only the rest is estimated.
    confidence : float
        Level of the interval.
    power_tuning : bool
        PPI++: weight the model by ``lambda = cov(y, f) / var(f)`` on the audit, clipped to [0, 1]
        (lambda = 1 is plain PPI).
    pseudo : float
        Pseudo-answers added to the audit's variance term (see the module docstring).
    finite_population : bool
        True: the interval is about this wave (finite-population correction). False: about a population
        the wave is a random sample of (the form of ``ppi_py.ppi_mean_ci``).

    Returns
    -------
    Estimate

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(500) < 0.3).astype(float); f = np.clip(y * 0.7 + rng.random(500) * 0.3, 0, 1)
    >>> audit = np.zeros(500, bool); audit[:60] = True
    >>> est = prediction_powered(f, np.where(audit, y, np.nan), audit)
    >>> est.low < y.mean() < est.high
    True
    """
    f, y, a, r = _as_arrays(scores, labels, audit, reviewed)
    n_total, n_rev, n = len(f), int(r.sum()), int(a.sum())
    u = ~r
    n_u = int(u.sum())
    known = float(np.sum(y[r]))
    model_only = wilson(float(np.sum(np.where(r, y, f))) if n_rev else float(f.sum()), n_total, confidence)
    if n_total == 0:
        raise DataError("No answered answers to estimate from.")
    if n_u == 0:
        return human_coded(y, confidence)
    if n < 2:
        raise DataError(f"An audit needs at least 2 coded answers to estimate from; found {n}. Code more answers "
                        f"of the audit sample.")
    z = _z(confidence)
    fa, ya, fu = f[a], y[a], f[u]
    mean_fu = float(fu.mean())
    # pseudo-answers: half coded 1, half 0, both with the model's mean score; they enter variances only
    pf = np.concatenate([fa, [mean_fu, mean_fu]])
    py = np.concatenate([ya, [1.0, 0.0]])
    pw = np.concatenate([np.ones(n), [pseudo / 2, pseudo / 2]])
    lam = 1.0
    if power_tuning:
        var_f = _weighted_var(pf, pw)
        cov = float(np.sum(pw * (pf - np.average(pf, weights=pw)) * (py - np.average(py, weights=pw))) / pw.sum())
        factor = 1.0 if finite_population else 1 + n / n_u
        lam = 1.0 if var_f <= 1e-12 else float(np.clip(cov / (factor * var_f), 0.0, 1.0))
    p_u = float(np.mean(ya - lam * fa) + lam * mean_fu)
    var_rect = _weighted_var(py - lam * pf, pw)
    var_class = _weighted_var(py, pw)
    if finite_population:
        fpc = max(1 - n / n_u, 0.0)
        se_u, se_class_u = math.sqrt(fpc * var_rect / n), math.sqrt(fpc * var_class / n)
    else:
        se_u = math.sqrt(var_rect / n + lam * lam * float(np.var(fu)) / n_u)
        se_class_u = math.sqrt(var_class / n)
    share = n_u / n_total
    estimate = (known + n_u * p_u) / n_total
    se = share * se_u
    low, high = max(0.0, estimate - z * se), min(1.0, estimate + z * se)
    audit_only = wilson(float(ya.sum()), n, confidence)
    classical = Interval((known + n_u * audit_only.estimate) / n_total, (known + n_u * audit_only.low) / n_total,
                         (known + n_u * audit_only.high) / n_total)
    if finite_population:
        # the sample m of the non-reviewed answers whose audit-only interval, with its own finite-population
        # correction, is as narrow: var_class * (1/m - 1/|U|) = se_u^2. At most |U| (coding them all).
        effective = n_u if var_class <= 0 else 1.0 / (se_u ** 2 / var_class + 1.0 / n_u)
    else:
        effective = n * (se_class_u / se_u) ** 2 if se_u > 0 else float("inf")
    return Estimate(estimate=float(np.clip(estimate, 0, 1)), low=low, high=high, method="prediction-powered",
                    n_answered=n_total, n_reviewed=n_rev, n_audit=n, effective_n=float(effective), se=se,
                    classical=classical, model_only=model_only)


def human_coded(labels, confidence: float = 0.95) -> Estimate:
    """Every answer human-coded: the share itself, with the Wilson interval the report's other columns use."""
    y = np.asarray(labels, dtype=float)
    interval = wilson(float(np.nansum(y)), len(y), confidence)
    se = math.sqrt(max(interval.estimate * (1 - interval.estimate), 0.0) / max(len(y), 1))
    return Estimate(interval.estimate, interval.low, interval.high, "human-coded", n_answered=len(y),
                    n_reviewed=len(y), se=se)


def model_only(values, reviewed=None, labels=None, confidence: float = 0.95) -> Estimate:
    """The model's share (reviewed answers with their human codes), Wilson interval as if all were true."""
    f = np.asarray(values, dtype=float)
    r = np.zeros(len(f), bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
    if r.any():
        f = np.where(r, np.asarray(labels, dtype=float), f)
    interval = wilson(float(f.sum()), len(f), confidence)
    se = math.sqrt(max(interval.estimate * (1 - interval.estimate), 0.0) / max(len(f), 1))
    return Estimate(interval.estimate, interval.low, interval.high, "model-only", n_answered=len(f),
                    n_reviewed=int(r.sum()), se=se, model_only=Interval(interval.estimate, interval.low, interval.high))


def difference(a: Estimate, b: Estimate, confidence: float = 0.95) -> Interval:
    """``a - b`` for two independent strata (e.g. waves), with ``se = sqrt(se_a^2 + se_b^2)``."""
    diff = a.estimate - b.estimate
    half = _z(confidence) * math.sqrt(a.se ** 2 + b.se ** 2)
    return Interval(diff, max(-1.0, diff - half), min(1.0, diff + half))


def adjusted(suggested, tp: int, fp: int, fn: int, tn: int, reviewed=None, labels=None,
             confidence: float = 0.95, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Estimate:
    """Adjusted classify-and-count (Forman 2008) from the model's confusion counts, without an audit.

    ``p = (q + t - 1) / (s + t - 1)`` clipped to [0, 1], with ``q`` the model's 0/1 share over the answers
    nobody reviewed, ``s = tp / (tp + fn)`` (sensitivity) and ``t = tn / (tn + fp)`` (specificity) from
    held-out or cross-validated coded answers. The interval is a parametric bootstrap: ``s`` and ``t`` from
    their Beta posteriors (Jeffreys prior), ``q`` binomial over the unreviewed answers (fixed ``seed``).
    Reviewed answers count with their human ``labels``.
    """
    q_all = np.asarray(suggested, dtype=float)
    r = np.zeros(len(q_all), bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
    n_total = len(q_all)
    if n_total == 0:
        raise DataError("No answered answers to estimate from.")
    if min(tp, fp, fn, tn) < 0 or tp + fn == 0 or tn + fp == 0:
        raise DataError(f"Confusion counts need positives and negatives (tp={tp}, fp={fp}, fn={fn}, tn={tn}); "
                        f"evaluate the model on coded answers that hold the code and answers that do not.")
    known = float(np.sum(np.asarray(labels, dtype=float)[r])) if r.any() else 0.0
    n_u = int((~r).sum())
    if n_u == 0:
        return human_coded(np.asarray(labels, dtype=float), confidence)
    q = float(q_all[~r].mean())
    rng = np.random.default_rng(seed)
    s_draw = rng.beta(tp + 0.5, fn + 0.5, draws)
    t_draw = rng.beta(tn + 0.5, fp + 0.5, draws)
    q_draw = rng.binomial(n_u, q, draws) / n_u

    def correct(q_, s_, t_):
        # a model no better than chance (s + t <= 1) says nothing about the share: the whole range is possible
        denom = np.asarray(s_ + t_ - 1, dtype=float)
        value = np.where(denom > 1e-6, (q_ + t_ - 1) / np.where(denom > 1e-6, denom, 1), np.nan)
        return np.clip(value, 0, 1)

    s, t = (tp + 0.5) / (tp + fn + 1), (tn + 0.5) / (tn + fp + 1)
    p_u = float(np.nan_to_num(correct(q, s, t), nan=q))
    boot = correct(q_draw, s_draw, t_draw)
    if np.mean(np.isnan(boot)) > (1 - confidence) / 2:
        low_u, high_u = 0.0, 1.0
    else:
        boot = np.where(np.isnan(boot), rng.random(draws), boot)
        low_u, high_u = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    share = n_u / n_total
    scale = lambda v: (known + n_u * v) / n_total  # noqa: E731
    se = share * float(np.nanstd(boot))
    as_coded = q_all if not r.any() else np.where(r, np.asarray(labels, dtype=float), q_all)
    return Estimate(scale(p_u), scale(float(low_u)), scale(float(high_u)), "adjusted", n_answered=n_total,
                    n_reviewed=int(r.sum()), se=se, model_only=wilson(float(as_coded.sum()), n_total, confidence))


def audit_size_for(tp: int, fp: int, fn: int, tn: int, margin: float = 0.05, confidence: float = 0.95,
                   n_answers: int | None = None) -> int:
    """Audit answers (random, coded blind) a prediction-powered interval needs to reach ``± margin``.

    From the model's confusion counts: with 0/1 suggestions the audit term's variance is ``var(f - y)``,
    ``f - y`` being +1 on a false positive, -1 on a false negative and 0 otherwise; ``n = z^2 var / margin^2``,
    with the finite-population correction when ``n_answers`` (the answers to estimate over) is given.
    """
    total = tp + fp + fn + tn
    if total <= 0:
        raise DataError("Confusion counts are all zero; evaluate the model on coded answers first.")
    mean = (fp - fn) / total
    var = (fp + fn) / total - mean * mean
    n0 = _z(confidence) ** 2 * max(var, 1e-9) / margin ** 2
    if n_answers:
        n0 = n0 / (1 + n0 / n_answers)
    return max(2, math.ceil(n0))
