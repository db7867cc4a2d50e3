"""Chance-corrected agreement of two coders on 0/1 codes: counts, kappa, Krippendorff's alpha, intervals.

Every figure here compares two 0/1 matrices of shape (n_answers, n_codes), one column per code: a
reference coder (a person) and another (the model, or a second person).

- :func:`confusion_counts`: per code, true and false positives and negatives.
- :func:`percent_agreement`: the share of answers both coders gave the same 0/1.
- :func:`krippendorff_alpha`: Krippendorff's alpha for nominal data (the ``krippendorff`` package).
- :func:`kappa_intervals`: bootstrap 95% intervals of Cohen's kappa over the answers.
- :func:`reading_sentence`: one plain sentence on how to read a kappa or alpha.

Examples
--------
>>> import numpy as np
>>> human = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
>>> model = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
>>> confusion_counts(human, model)[0]
{'tp': 2, 'fp': 1, 'fn': 0, 'tn': 1}
"""

from __future__ import annotations

import warnings

import numpy as np

#: Resamples of the answers behind a kappa interval. On the illustrative held-out answers (120 answers,
#: 12 codes, shipped model) the ends of the mean-kappa interval move by under 0.01 across seeds 0-9, a
#: single code's by up to 0.06: read a code's interval to one decimal.
KAPPA_RESAMPLES = 1000
#: Landis & Koch (1977) bands above 0 (below it: "poor"): (upper bound, name), read from the lowest.
LANDIS_KOCH = ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"),
               (1.0, "almost perfect"))


def confusion_counts(y_true, y_pred) -> list[dict[str, int]]:
    """Per code (column), ``{"tp", "fp", "fn", "tn"}`` of ``y_pred`` against the reference ``y_true``."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp, fp = (y_true & y_pred).sum(axis=0), (~y_true & y_pred).sum(axis=0)
    fn, tn = (y_true & ~y_pred).sum(axis=0), (~y_true & ~y_pred).sum(axis=0)
    return [{"tp": int(a), "fp": int(b), "fn": int(c), "tn": int(d)} for a, b, c, d in zip(tp, fp, fn, tn)]


def percent_agreement(y_true, y_pred) -> np.ndarray:
    """Per code, the share of answers on which both coders gave the same 0/1 (NaN without answers).

    High for rare codes whatever the coders' skill: two coders who never tick a code agree on it on
    almost every answer. Kappa and alpha correct for that.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        return np.full(y_true.shape[1], np.nan)
    return (y_true == y_pred).mean(axis=0)


def krippendorff_alpha(a, b) -> float:
    """Krippendorff's alpha of two coders' 0/1 codes (nominal); NaN when undefined (one value throughout).

    Parameters
    ----------
    a, b : array-like of shape (n_answers,)
        0/1 codes of the two coders on the same answers.
    """
    import krippendorff

    data = np.vstack([np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()])
    # alpha compares disagreement with that expected by chance; with a single value in all the
    # codes there is none to expect and alpha is 0/0
    if data.shape[1] < 2 or len(np.unique(data)) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                        value_domain=[0.0, 1.0]))


def _kappa_from_counts(tp, fp, fn, tn) -> np.ndarray:
    """Cohen's kappa from 2x2 counts (arrays broadcast); NaN where chance agreement is 1 (undefined)."""
    tp, fp, fn, tn = (np.asarray(v, dtype=float) for v in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (tp + tn) / n
        chance = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
        return np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)


def kappa_intervals(y_true, y_pred, level: float = 0.95, resamples: int = KAPPA_RESAMPLES,
                    seed: int = 0) -> dict[str, list[tuple[float, float]] | tuple[float, float]]:
    """Bootstrap intervals of Cohen's kappa: how much it depends on which answers were coded.

    The answers are resampled with replacement (each with all its codes), ``resamples`` times with a
    fixed ``seed``, and the percentile interval at ``level`` is taken of each code's kappa, of the
    pooled (micro) kappa and of the mean (macro) over codes. Resamples in which a kappa is undefined
    (a code that neither coder used in the resample) are left out of that figure's interval.

    Returns
    -------
    dict
        ``per_code``: list of (low, high) per column; ``micro`` and ``macro``: (low, high). NaN ends
        when fewer than two answers were coded or the kappa is undefined in every resample.
    """
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    n, k = y_true.shape
    undefined = (float("nan"), float("nan"))
    if n < 2:
        return {"per_code": [undefined] * k, "micro": undefined, "macro": undefined}
    # each answer's tp, fp, fn and tn per code, side by side: a resample's counts are a weighted sum
    cells = np.hstack([y_true & y_pred, ~y_true & y_pred, y_true & ~y_pred, ~y_true & ~y_pred]).astype(np.float64)
    rng = np.random.default_rng(seed)
    per_code, micro = np.empty((resamples, k)), np.empty(resamples)
    batch = max(1, 4_000_000 // n)  # keeps the (batch, n) matrix of draws near 32 MB
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        drawn = rng.integers(0, n, size=(size, n))
        times = np.bincount((drawn + n * np.arange(size)[:, None]).ravel(), minlength=size * n).reshape(size, n)
        tp, fp, fn, tn = (times @ cells).reshape(size, 4, k).transpose(1, 0, 2)
        per_code[start:start + size] = _kappa_from_counts(tp, fp, fn, tn)
        micro[start:start + size] = _kappa_from_counts(tp.sum(1), fp.sum(1), fn.sum(1), tn.sum(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns and means: undefined kappas
        macro = np.nanmean(per_code, axis=1)
    tail = (1 - level) / 2 * 100
    return {"per_code": [_percentile_interval(per_code[:, j], tail) for j in range(k)],
            "micro": _percentile_interval(micro, tail), "macro": _percentile_interval(macro, tail)}


def _percentile_interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def landis_koch_band(value: float) -> str | None:
    """The Landis & Koch (1977) name of a kappa or alpha ('moderate' for 0.41–0.60); None for NaN."""
    if value is None or not np.isfinite(value):
        return None
    if value < 0:
        return "poor"
    for upper, name in LANDIS_KOCH:
        if value <= upper:
            return name
    return LANDIS_KOCH[-1][1]


def reading_sentence(kappa: float | None = None, interval: tuple[float, float] | None = None,
                     what: str = "Mean kappa") -> str:
    """One plain sentence on how to read kappa and alpha, naming the band of ``kappa`` if given.

    Examples
    --------
    >>> reading_sentence(0.53, (0.45, 0.6))  # doctest: +ELLIPSIS
    'How to read these: kappa and alpha are 1 for perfect agreement and 0 for agreement by chance; mean kappa 0.53 (95% interval 0.45–0.60) is "moderate" on the bands of Landis & Koch (1977)...'
    """
    band = landis_koch_band(kappa) if kappa is not None else None
    sentence = "How to read these: kappa and alpha are 1 for perfect agreement and 0 for agreement by chance; "
    if band is not None:
        shown = f"{what[0].lower()}{what[1:]} {kappa:.2f}"
        if interval is not None and all(np.isfinite(v) for v in interval):
            shown += f" (95% interval {interval[0]:.2f}–{interval[1]:.2f})"
        sentence += f'{shown} is "{band}" on the bands of Landis & Koch (1977)'
    else:
        sentence += "Landis & Koch (1977) name bands of them"
    return (sentence + " (below 0 poor, to 0.20 slight, 0.40 fair, 0.60 moderate, 0.80 substantial, above it "
            "almost perfect), which their authors called arbitrary: a rough guide, not a pass mark; percent "
            "agreement is high for rare codes whatever the coders' skill.")
