import numpy as np
import pytest
from scipy.stats import bootstrap
from sklearn.metrics import f1_score

from opm_nlp.classify.metrics import f1_intervals


def coded_pair(n, seed=0):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, 6)) < 0.2).astype(int)
    y_pred = np.where(rng.random(y_true.shape) < 0.85, y_true, 1 - y_true)
    return y_true, y_pred


def test_intervals_are_those_of_a_plain_bootstrap_of_f1_score():
    y_true, y_pred = coded_pair(150)
    got = f1_intervals(y_true, y_pred, resamples=300)
    for average in ("micro", "macro"):
        plain = bootstrap((np.arange(len(y_true)),), vectorized=False, n_resamples=300, method="percentile",
                          random_state=0, statistic=lambda rows, average=average: f1_score(
                              y_true[rows], y_pred[rows], average=average, zero_division=0))
        assert got[average] == pytest.approx((plain.confidence_interval.low, plain.confidence_interval.high))
        assert got[average][0] < f1_score(y_true, y_pred, average=average) < got[average][1]


def test_more_coded_answers_give_narrower_intervals():
    y_true, y_pred = coded_pair(100)
    few = f1_intervals(y_true, y_pred)["micro"]
    many = f1_intervals(np.tile(y_true, (9, 1)), np.tile(y_pred, (9, 1)))["micro"]
    assert (many[1] - many[0]) < 0.5 * (few[1] - few[0])


def test_perfect_agreement_and_too_few_answers():
    y_true, _ = coded_pair(40)
    assert f1_intervals(y_true, y_true) == {"micro": (1.0, 1.0), "macro": (1.0, 1.0)}
    assert all(np.isnan(v).all() for v in f1_intervals(y_true[:1], y_true[:1]).values())
