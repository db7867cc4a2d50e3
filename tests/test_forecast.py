"""The stopping forecast: a learning curve on the coded answers, and the codes with too few of them."""

import json
import re

import numpy as np
import pytest

from opm_nlp.classify.forecast import (MIN_ANSWERS, curve_gain, fit_curve, forecast_lines, learning_forecast,
                                       too_few_examples)


def test_fit_curve_recovers_a_power_law_and_its_gains():
    sizes = np.array([50, 100, 200, 400])
    values = 0.8 - 0.9 * sizes ** -0.5
    a, b, c = fit_curve(sizes, values)
    assert (a, b, c) == (pytest.approx(0.8), pytest.approx(0.9), 0.5)
    gain_100, gain_500 = curve_gain((a, b, c), 400, 100), curve_gain((a, b, c), 400, 500)
    assert gain_100 == pytest.approx(0.9 * (400 ** -0.5 - 500 ** -0.5))
    assert 0 < gain_100 < gain_500 < 0.8 - values[-1]  # more answers add more, never past the ceiling


def test_a_curve_that_falls_forecasts_no_gain():
    params = fit_curve([50, 100, 200, 400], [0.60, 0.58, 0.57, 0.55])
    assert params[1] == 0 and curve_gain(params, 400, 500) == 0


def _separable(n: int, codes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, codes)) < 0.3).astype(int)
    X = Y @ rng.normal(size=(codes, 20)) + rng.normal(scale=2.5, size=(n, 20))
    return X, Y


def test_learning_forecast_learns_from_more_answers_and_repeats_itself():
    X, Y = _separable(300)
    forecast = learning_forecast(X, Y)
    assert forecast.n_answers == 300 and len(forecast.sizes) == 4 and forecast.sizes[-1] == 200
    assert forecast.micro[-1] > forecast.micro[0] and forecast.macro[-1] > forecast.macro[0]
    gains = forecast.gains
    assert 0 < gains[100]["micro_f1"] < gains[500]["micro_f1"] < 1 - forecast.micro[-1]
    assert learning_forecast(X, Y).as_dict() == forecast.as_dict()  # same answers, same forecast
    json.dumps(forecast.as_dict())


def test_learning_forecast_uses_examples_and_needs_enough_answers():
    X, Y = _separable(MIN_ANSWERS - 1)
    assert learning_forecast(X, Y) is None
    X, Y = _separable(180, seed=1)
    X, Y, E, EY = X[:120], Y[:120], X[120:], Y[120:]  # examples from the same codes
    with_examples, without = learning_forecast(X, Y, (E, EY)), learning_forecast(X, Y)
    assert with_examples.micro[0] > without.micro[0]  # examples carry the smallest parts


def test_too_few_examples_names_rare_codes_and_the_answers_to_code():
    Y = np.zeros((100, 3), dtype=int)
    Y[:50, 0] = 1  # plenty
    Y[:2, 1] = 1   # 2 of 100: 3 more positives at 2% take 150 more answers
    few = too_few_examples(Y, ["common", "rare", "absent"], 5)
    assert few == [{"code": "absent", "positives": 0, "more_answers": None},
                   {"code": "rare", "positives": 2, "more_answers": 150}]


def test_forecast_lines_say_what_more_coding_buys_and_survive_edited_records():
    record = {"gains": {"100": {"micro_f1": 0.0061, "macro_f1": 0.012}, "500": {"micro_f1": 0.02, "macro_f1": 0.031}},
              "too_few": [{"code": f"c{i}", "positives": 1, "more_answers": 400} for i in range(7)]}
    more, few = forecast_lines(record)
    assert more.startswith("More coding: 100 more coded answers are likely to add +0.006 micro-F1 and +0.012 "
                           "macro-F1; 500 more coded answers are likely to add +0.020 micro-F1 and +0.031 macro-F1")
    assert "7 code(s)" in few and "c0 (1; about 400 more at its rate)" in few and ", and 2 more." in few
    assert forecast_lines(None) == [] and forecast_lines({"gains": {"100": "x"}}) == []
    assert forecast_lines({"gains": {}, "too_few": []}) == []

