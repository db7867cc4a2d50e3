"""When to stop coding: what the next coded answers are likely to add, from a learning curve.

:func:`learning_forecast` measures, by cross-validation on the coded answers themselves, how F1 grows
with the number of answers a light model learns from (a balanced logistic regression per code on the
answers' frozen embeddings, reduced to at most :data:`DIMENSIONS` principal components; the codebook's
examples join every training part, as they join the real model's training); it fits the curve
``F1(n) = a - b * n ** -c`` to those points, for micro- and macro-F1 each, and reads off the gain from
the answers coded now to 100 and 500 more. The light model is not the tagging model: its *level* is
lower, and only the *gains* are read from it. ``bench/bench_forecast.py`` measures how far the forecast
gains are from the gains the real model makes along a random coding order.

Codes with fewer than :data:`~opm_nlp.classify.estimator.MIN_POSITIVES` coded positives cannot be learned
well whatever the curve says; :func:`too_few_examples` names them with the coded answers that their
rate suggests it takes to reach that many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: The learning curve's points: these fractions of each cross-validation training part.
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
#: Cross-validation folds of the forecast (fewer than training's: it must cost at most a fifth of it).
FOLDS = 3
#: Ridge penalty of the light model, per answer learned from.
RIDGE = 0.01
#: The exponents tried for ``F1(n) = a - b * n ** -c``; for each, ``a`` and ``b`` are least squares.
EXPONENTS = (0.1, 0.25, 0.5, 0.75, 1.0)
#: Fewer coded answers than this and no curve is fitted (its points would be a handful of answers).
MIN_ANSWERS = 40


@dataclass(frozen=True)
class Forecast:
    """What more coding is likely to add, and the curve it comes from.

    Attributes
    ----------
    n_answers : int
        Coded answers the model learned from.
    sizes : tuple of int
        Training sizes of the learning curve's points (answers; the codebook's examples come on top).
    micro, macro : tuple of float
        The light model's cross-validated micro- and macro-F1 at those sizes.
    gains : dict
        ``{extra: {"micro_f1": gain, "macro_f1": gain}}`` for each number of extra coded answers.
    """

    n_answers: int
    sizes: tuple[int, ...]
    micro: tuple[float, ...]
    macro: tuple[float, ...]
    gains: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready form (the model folder's ``metadata.json["forecast"]``)."""
        return {"n_answers": self.n_answers, "sizes": list(self.sizes),
                "micro_f1": [round(v, 4) for v in self.micro], "macro_f1": [round(v, 4) for v in self.macro],
                "gains": {str(k): {m: round(g, 4) for m, g in v.items()} for k, v in self.gains.items()}}


def fit_curve(sizes, values) -> tuple[float, float, float]:
    """Fit ``F1(n) = a - b * n ** -c`` (b >= 0: more answers never hurt) to measured points.

    Returns ``(a, b, c)``; ``c`` is the exponent of :data:`EXPONENTS` with the least squared error.
    With points that fall as ``n`` grows, ``b`` is 0: a flat curve, no gain.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    best = None
    for c in EXPONENTS:
        x = -(n ** -c)
        design = np.column_stack([np.ones_like(x), x])
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        if b < 0:
            a, b = float(y.mean()), 0.0
        error = float(((a - b * n ** -c - y) ** 2).sum())
        if best is None or error < best[0] - 1e-15:
            best = (error, float(a), float(b), c)
    return best[1], best[2], best[3]


def curve_gain(params: tuple[float, float, float], n_now: int, extra: int) -> float:
    """The fitted curve's rise from ``n_now`` answers to ``n_now + extra``."""
    a, b, c = params
    return float(b * (n_now ** -c - (n_now + extra) ** -c))


def _f1(Y: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    tp = (Y & P).sum(axis=0)
    fp = (~Y & P).sum(axis=0)
    fn = (Y & ~P).sum(axis=0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    present = Y.sum(axis=0) > 0
    per_code = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    macro = float(per_code[present].mean()) if present.any() else 0.0
    return float(micro), macro


def _predict(X_train, Y_train, X_test, rates, ridge: float) -> np.ndarray:
    """Ridge regression of all codes at once; each code suggested for its coded rate of the answers.

    Suggesting each code for the share of answers it was coded in (``rates``, top scores first) keeps
    the light model from over-suggesting rare codes, so that its F1 moves with what it learned.
    """
    mean = X_train.mean(axis=0)
    A = X_train - mean
    target = Y_train - Y_train.mean(axis=0)
    penalty = ridge * len(A)
    if len(A) < A.shape[1]:  # fewer answers than dimensions: the same solution, solved answer by answer
        scores = (X_test - mean) @ (A.T @ np.linalg.solve(A @ A.T + penalty * np.eye(len(A)), target))
    else:
        scores = (X_test - mean) @ np.linalg.solve(A.T @ A + penalty * np.eye(A.shape[1]), A.T @ target)
    P = np.zeros(scores.shape, dtype=bool)
    for j, rate in enumerate(rates):
        k = int(round(rate * len(X_test)))
        if k:
            P[np.argsort(-scores[:, j], kind="mergesort")[:k], j] = True
    return P


def learning_forecast(X: np.ndarray, Y: np.ndarray, examples: tuple[np.ndarray, np.ndarray] | None = None,
                      extra: tuple[int, ...] = (100, 500), ridge: float = RIDGE, seed: int = 0) -> Forecast | None:
    """Forecast the F1 gain of ``extra`` more coded answers from a learning curve on the coded answers.

    Parameters
    ----------
    X : ndarray of shape (n_answers, n_features)
        The coded answers' embeddings (frozen network).
    Y : ndarray of shape (n_answers, n_codes)
        Their 0/1 codes.
    examples : (ndarray, ndarray), optional
        The codebook's examples' embeddings and 0/1 codes, added to every training part.
    extra : tuple of int
        Numbers of further coded answers to forecast the gain of.
    ridge : float
        Regularisation of the light model's ridge regression (per answer).
    seed : int
        Folds and subsets are drawn with it: the same answers give the same forecast.

    Returns
    -------
    Forecast or None
        None with fewer than :data:`MIN_ANSWERS` coded answers.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small solves: one thread is faster than many, above all on a busy machine
        return _learning_forecast(X, Y, examples, extra, ridge, seed)


def _learning_forecast(X, Y, examples, extra, ridge, seed) -> Forecast | None:
    """:func:`learning_forecast`'s work, under its thread limit."""
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y).astype(bool)
    n = len(X)
    if n < MIN_ANSWERS:
        return None
    E, EY = (np.zeros((0, X.shape[1])), np.zeros((0, Y.shape[1]), dtype=bool)) if examples is None else \
        (np.asarray(examples[0], dtype=np.float64), np.asarray(examples[1]).astype(bool))
    rng = np.random.default_rng(seed)
    predicted = {f: np.zeros_like(Y) for f in FRACTIONS}
    sizes = {f: [] for f in FRACTIONS}
    for train, test in KFold(FOLDS, shuffle=True, random_state=seed).split(X):
        order = rng.permutation(train)  # nested parts: each fraction holds the smaller ones
        for f in FRACTIONS:
            part = order[:max(2, int(round(f * len(order))))]
            sizes[f].append(len(part))
            predicted[f][test] = _predict(np.vstack([X[part], E]), np.vstack([Y[part], EY]).astype(float),
                                          X[test], Y[part].mean(axis=0), ridge)
    points = [(float(np.mean(sizes[f])), *_f1(Y, predicted[f])) for f in FRACTIONS]
    ns = tuple(int(round(p[0])) for p in points)
    micro = tuple(p[1] for p in points)
    macro = tuple(p[2] for p in points)
    curves = {"micro_f1": fit_curve(ns, micro), "macro_f1": fit_curve(ns, macro)}
    gains = {k: {m: curve_gain(params, n, k) for m, params in curves.items()} for k in extra}
    return Forecast(n_answers=n, sizes=ns, micro=micro, macro=macro, gains=gains)


def too_few_examples(Y: np.ndarray, codes: list[str], minimum: int) -> list[dict]:
    """The codes with fewer than ``minimum`` coded positives, rarest first.

    Each is ``{"code", "positives", "more_answers"}``: ``more_answers`` is how many further answers,
    coded at random, are expected to bring the code to ``minimum`` positives at its present rate (None
    when it has none yet: its rate is unknown; find answers that carry it, or add examples to the
    codebook).
    """
    Y = np.asarray(Y)
    n = len(Y)
    out = []
    for j, code in enumerate(codes):
        positives = int(Y[:, j].sum()) if n else 0
        if positives >= minimum:
            continue
        more = None if positives == 0 else int(math.ceil((minimum - positives) * n / positives))
        out.append({"code": code, "positives": positives, "more_answers": more})
    return sorted(out, key=lambda item: (item["positives"], item["code"]))


def forecast_for(classifier, texts: list[str], Y: np.ndarray, codes: list[str], contexts=None,
                 examples: tuple[list[str], np.ndarray] | None = None, minimum: int = 5) -> dict:
    """The forecast of a fitted :class:`~opm_nlp.classify.estimator.EmbeddingClassifier`, JSON-ready.

    Embeds ``texts`` (and the examples' texts) with the classifier's frozen embedder — served from its
    caches, since training embedded them — and returns :meth:`Forecast.as_dict` (or ``{}`` with too few
    answers) with ``"too_few"`` (:func:`too_few_examples`) and ``"seconds"`` (time taken).
    """
    import time

    start = time.perf_counter()
    X = classifier._embedding(list(texts), contexts)
    example_vectors = None
    if examples is not None and len(examples[0]):
        example_vectors = (classifier._embedding(list(examples[0]), None), np.asarray(examples[1]))
    forecast = learning_forecast(X, Y, example_vectors)
    out = {} if forecast is None else forecast.as_dict()
    out["too_few"] = too_few_examples(Y, codes, minimum)
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def forecast_lines(record: dict | None, limit: int = 5) -> list[str]:
    """What ``opm-nlp train`` prints and the model card says of a forecast record (:func:`forecast_for`).

    Examples
    --------
    >>> forecast_lines({"gains": {"100": {"micro_f1": 0.006, "macro_f1": 0.01},
    ...                           "500": {"micro_f1": 0.02, "macro_f1": 0.03}}, "too_few": []})[0][:60]
    'More coding: 100 more coded answers are likely to add +0.006 '
    """
    try:
        return _lines(record, limit)
    except (AttributeError, KeyError, TypeError, ValueError):  # a record edited out of shape counts as absent
        return []


def _lines(record, limit: int) -> list[str]:
    if not record:
        return []
    lines = []
    gains = record.get("gains")
    if gains:
        parts = [f"{k} more coded answers are likely to add {v['micro_f1']:+.3f} micro-F1 and "
                 f"{v['macro_f1']:+.3f} macro-F1" for k, v in gains.items()]
        lines.append(f"More coding: {'; '.join(parts)} (forecast from a learning curve on these answers; "
                     f"a rough guide, see docs/benchmarks.md for how far it is off).")
    few = record.get("too_few") or []
    if few:
        def one(item: dict) -> str:
            more = (f"about {item['more_answers']} more at its rate" if item["more_answers"] is not None
                    else "its rate unknown")
            return f"{item['code']} ({item['positives']}; {more})"
        shown = ", ".join(one(item) for item in few[:limit])
        rest = f", and {len(few) - limit} more" if len(few) > limit else ""
        lines.append(f"Too few coded answers to learn {len(few)} code(s) (coded positives; answers to code at "
                     f"random to reach 5): {shown}{rest}. Code answers that carry them, or add examples to the "
                     f"codebook.")
    return lines
