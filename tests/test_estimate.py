"""Prediction-powered and adjusted prevalence estimates (opm_nlp.report.estimate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opm_nlp.exceptions import DataError
from opm_nlp.report.estimate import (adjusted, audit_size_for, difference, human_coded, model_only,
                                     prediction_powered, wilson)


def _wave(n=800, prevalence=0.3, seed=0, audit_n=80):
    """A wave whose model over-scores the code: true codes, scores and a random audit."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(float)
    f = np.clip(0.6 * y + 0.25 + 0.2 * rng.standard_normal(n), 0, 1)
    audit = np.zeros(n, bool)
    audit[rng.choice(n, audit_n, replace=False)] = True
    return y, f, audit


def test_matches_ppi_py_plain_ppi():
    ppi_py = pytest.importorskip("ppi_py")
    y, f, audit = _wave()
    est = prediction_powered(f, np.where(audit, y, np.nan), audit, pseudo=0.0, power_tuning=False,
                             finite_population=False)
    low, high = ppi_py.ppi_mean_ci(y[audit], f[audit], f, alpha=0.05, lam=1)
    centre = ppi_py.ppi_mean_pointestimate(y[audit], f[audit], f, lam=1)
    assert est.estimate == pytest.approx(float(np.ravel(centre)[0]), abs=1e-12)
    assert (est.low, est.high) == pytest.approx((float(np.ravel(low)[0]), float(np.ravel(high)[0])), abs=1e-12)


def test_corrects_the_models_bias_and_covers():
    y, f, audit = _wave(seed=2)  # one fixed draw (test_coverage_by_simulation checks the rate over many)
    est = prediction_powered(f, np.where(audit, y, np.nan), audit)
    assert f.mean() - y.mean() > 0.1  # the model over-counts ...
    assert est.low <= y.mean() <= est.high  # ... the estimate does not
    assert est.method == "prediction-powered" and est.n_audit == 80 and est.n_answered == 800
    assert est.classical.low <= est.classical.estimate <= est.classical.high
    assert est.effective_n > 80  # a useful model is worth more than its audit
    assert est.high - est.low < est.classical.high - est.classical.low


def test_coverage_by_simulation():
    """Over many random audits, about 95% of intervals contain the wave's share."""
    hits = []
    for seed in range(300):
        y, f, audit = _wave(n=600, prevalence=0.2, seed=seed, audit_n=60)
        est = prediction_powered(f, np.where(audit, y, np.nan), audit)
        hits.append(est.low <= y.mean() <= est.high)
    assert 0.92 <= np.mean(hits) <= 0.995


def test_finite_population_interval_is_narrower_than_superpopulation():
    y, f, audit = _wave()
    labels = np.where(audit, y, np.nan)
    wave = prediction_powered(f, labels, audit)
    population = prediction_powered(f, labels, audit, finite_population=False)
    assert wave.high - wave.low < population.high - population.low


def test_reviewed_answers_count_as_coded():
    y, f, audit = _wave()
    reviewed = np.zeros(len(y), bool)
    reviewed[~audit][:300] = False
    reviewed[np.flatnonzero(~audit)[:300]] = True
    labels = np.where(audit | reviewed, y, np.nan)
    est = prediction_powered(f, labels, audit, reviewed)
    alone = prediction_powered(f[~reviewed], labels[~reviewed], audit[~reviewed])
    n_u = int((~reviewed).sum())
    assert est.estimate == pytest.approx((y[reviewed].sum() + n_u * alone.estimate) / len(y))
    assert est.se == pytest.approx(alone.se * n_u / len(y))
    assert est.n_reviewed == 300


def test_rare_code_audit_without_positives_keeps_a_width():
    n = 1000
    y = np.zeros(n)
    y[:15] = 1  # 1.5%, none in the audit
    f = np.full(n, 0.01)
    audit = np.zeros(n, bool)
    audit[500:550] = True
    est = prediction_powered(f, np.where(audit, y, np.nan), audit)
    bare = prediction_powered(f, np.where(audit, y, np.nan), audit, pseudo=0.0)
    assert bare.high - bare.low < 1e-6  # the collapse the pseudo-counts guard against
    assert est.high - est.low > 0.01 and est.low <= y.mean() <= est.high


def test_power_tuning_never_wider_than_plain_on_a_weak_model():
    rng = np.random.default_rng(3)
    y = (rng.random(900) < 0.4).astype(float)
    f = rng.random(900)  # a model that knows nothing
    audit = np.zeros(900, bool)
    audit[:100] = True
    labels = np.where(audit, y, np.nan)
    tuned = prediction_powered(f, labels, audit, power_tuning=True)
    plain = prediction_powered(f, labels, audit, power_tuning=False)
    assert tuned.high - tuned.low < plain.high - plain.low


def test_errors_are_one_clear_line():
    y, f, audit = _wave()
    with pytest.raises(DataError, match="both in the audit and reviewed"):
        prediction_powered(f, y, audit, reviewed=audit)
    with pytest.raises(DataError, match="needs a human code of 0 or 1"):
        prediction_powered(f, np.full(len(y), np.nan), audit)
    with pytest.raises(DataError, match="at least 2 coded answers"):
        prediction_powered(f, np.where(audit, y, np.nan), np.zeros(len(y), bool))
    with pytest.raises(DataError, match=r"scores must lie in \[0, 1\]"):
        prediction_powered(f * 3, np.where(audit, y, np.nan), audit)
    with pytest.raises(DataError, match="one entry per answer"):
        prediction_powered(f[:-1], y, audit)


def test_all_reviewed_is_human_coded():
    y = np.array([1, 0, 0, 1, 1], float)
    est = prediction_powered(np.zeros(5), y, np.zeros(5, bool), np.ones(5, bool))
    assert est.method == "human-coded" and est.estimate == pytest.approx(0.6)
    assert (est.low, est.high) == pytest.approx((wilson(3, 5).low, wilson(3, 5).high))
    assert human_coded(y).estimate == pytest.approx(0.6)


def test_model_only_and_wilson():
    est = model_only(np.array([1, 1, 0, 0]))
    assert est.method == "model-only" and est.estimate == 0.5
    w = wilson(40, 100)
    from statsmodels.stats.proportion import proportion_confint
    assert (w.low, w.high) == pytest.approx(proportion_confint(40, 100, method="wilson"))


def test_difference_of_independent_strata():
    y1, f1, a1 = _wave(seed=1)
    y2, f2, a2 = _wave(seed=2, prevalence=0.45)
    e1 = prediction_powered(f1, np.where(a1, y1, np.nan), a1)
    e2 = prediction_powered(f2, np.where(a2, y2, np.nan), a2)
    diff = difference(e2, e1)
    assert diff.estimate == pytest.approx(e2.estimate - e1.estimate)
    assert diff.high - diff.estimate == pytest.approx(1.959964 * math.hypot(e1.se, e2.se), rel=1e-5)


def test_adjusted_classify_and_count():
    rng = np.random.default_rng(0)
    n, p, s, t = 2000, 0.25, 0.8, 0.9
    y = rng.random(n) < p
    suggested = np.where(y, rng.random(n) < s, rng.random(n) > t).astype(float)
    est = adjusted(suggested, tp=400, fp=75, fn=100, tn=675)  # s = 0.8, t = 0.9 from 1,250 held-out answers
    assert est.method == "adjusted"
    assert suggested.mean() == pytest.approx(est.model_only.estimate)
    assert est.low <= y.mean() <= est.high
    assert abs(est.estimate - y.mean()) < abs(suggested.mean() - y.mean())
    again = adjusted(suggested, tp=400, fp=75, fn=100, tn=675)
    assert (again.low, again.high) == (est.low, est.high)  # fixed seed
    fewer = adjusted(suggested, tp=40, fp=8, fn=10, tn=67)  # same rates, a tenth of the evidence
    assert fewer.high - fewer.low > est.high - est.low


def test_adjusted_refuses_counts_without_positives():
    with pytest.raises(DataError, match="need positives and negatives"):
        adjusted(np.ones(10), tp=0, fp=3, fn=0, tn=20)


def test_adjusted_chance_model_gives_the_whole_range():
    est = adjusted(np.array([1, 0] * 50, float), tp=50, fp=50, fn=50, tn=50)
    assert (est.low, est.high) == (0.0, 1.0)


def test_audit_size_for_margin():
    n = audit_size_for(tp=80, fp=20, fn=20, tn=880)  # 4% of answers misclassified, balanced
    assert n == math.ceil(1.959964 ** 2 * 0.04 / 0.05 ** 2)
    assert audit_size_for(tp=80, fp=20, fn=20, tn=880, n_answers=100) < 100
    assert audit_size_for(tp=60, fp=60, fn=60, tn=820) > n


def test_effective_n_is_at_most_the_answers_nobody_reviewed():
    """A near-perfect model is worth at most coding every answer left: the effective n never exceeds |U|."""
    rng = np.random.default_rng(5)
    y = (rng.random(180) < 0.3).astype(float)
    f = np.clip(y + rng.normal(0, 0.01, 180), 0, 1)
    audit = np.zeros(180, bool)
    audit[:40] = True
    est = prediction_powered(f, np.where(audit, y, np.nan), audit)
    assert 40 < est.effective_n <= 180
    noisy = prediction_powered(np.full(180, 0.3), np.where(audit, y, np.nan), audit)
    assert noisy.effective_n < est.effective_n
