"""Agreement between coders: model against human, human against human, per code.

The statistics themselves (confusion counts, Krippendorff's alpha, kappa intervals, how to read
them) are in :mod:`opm_nlp.classify.agreement`.

Results are DataFrames with one row per code plus ``micro`` and ``macro`` average rows.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from opm_nlp.classify.agreement import (confusion_counts, kappa_intervals, krippendorff_alpha, percent_agreement,
                                        reading_sentence)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two 0/1 vectors; NaN when it is undefined (both coders constant)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0:
        return float("nan")
    if (a == b).all() and len(np.unique(a)) == 1:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(a, b))


def agreement_table(y_true, y_pred, codes: Sequence[str], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-code precision, recall, F1, support and Cohen's kappa of ``y_pred`` against ``y_true``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_answers, n_codes)
        0/1 codes; ``y_true`` is the reference coder (its positives are the support).
    codes : sequence of str
        Code ids, one per column.
    labels : dict, optional
        Code labels to show beside the ids.

    Returns
    -------
    DataFrame
        Index: code ids, then ``micro`` and ``macro``. Columns: label, precision, recall, f1,
        support (reference positives), predicted (positives in ``y_pred``), kappa (Cohen's), alpha
        (Krippendorff's, nominal), agreement (share of answers with the same 0/1). The ``micro`` row
        pools every (answer, code) pair; ``macro`` is the mean over codes.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
        micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    kappas = np.array([cohen_kappa(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])])
    table = pd.DataFrame({
        "label": [(labels or {}).get(c, c) for c in codes],
        "precision": p, "recall": r, "f1": f, "support": s.astype(int),
        "predicted": y_pred.sum(axis=0).astype(int), "kappa": kappas,
    }, index=pd.Index(list(codes), name="code"))
    alphas = np.array([krippendorff_alpha(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])])
    table["alpha"] = alphas
    table["agreement"] = same = percent_agreement(y_true, y_pred)
    flat_kappa = cohen_kappa(y_true.ravel(), y_pred.ravel())
    table.loc["micro"] = ["(all codes pooled)", micro[0], micro[1], micro[2], int(s.sum()),
                          int(y_pred.sum()), flat_kappa, krippendorff_alpha(y_true.ravel(), y_pred.ravel()),
                          np.nan if len(y_true) == 0 else float((y_true == y_pred).mean())]
    table.loc["macro"] = ["(mean over codes)", p.mean(), r.mean(), f.mean(), int(s.sum()),
                          int(y_pred.sum()), _nanmean(kappas), _nanmean(alphas), _nanmean(same)]
    table[["support", "predicted"]] = table[["support", "predicted"]].astype(int)
    return table


def _nanmean(values: np.ndarray) -> float:
    """Mean of the defined values (NaN when none is)."""
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def f1_intervals(y_true, y_pred, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict[str, tuple]:
    """Bootstrap intervals of micro- and macro-F1: how much the figures depend on which answers were coded.

    The answers are resampled with replacement (each with all its codes), ``resamples`` times, and the
    percentile interval at ``level`` is returned for each average, as ``{"micro": (low, high), "macro":
    (low, high)}``. It covers the sampling of the answers, not the training of the model: an interval
    of cross-validated figures is as optimistic as the figures themselves.
    """
    from scipy.stats import bootstrap

    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    n, k = y_true.shape
    if n < 2:
        return {"micro": (float("nan"), float("nan")), "macro": (float("nan"), float("nan"))}
    # each answer's true positives, false positives and false negatives per code, side by side
    counts = np.hstack([y_true & y_pred, ~y_true & y_pred, y_true & ~y_pred]).astype(np.float64)

    def f1(rows: np.ndarray, average: str) -> np.ndarray:
        drawn = np.atleast_2d(rows)  # (resamples, answers): indices of the answers drawn
        times = np.bincount((drawn + n * np.arange(len(drawn))[:, None]).ravel(), minlength=drawn.size)
        tp, fp, fn = (times.reshape(drawn.shape) @ counts).reshape(len(drawn), 3, k).transpose(1, 0, 2)
        if average == "micro":
            tp, fp, fn = tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1)
        denominator = 2 * tp + fp + fn
        score = np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
        score = score if average == "micro" else score.mean(axis=1)
        return score if np.ndim(rows) > 1 else score[0]

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when every resample gives the same figure (a perfect coder)
        for average in ("micro", "macro"):
            result = bootstrap((np.arange(n),), lambda rows, axis=-1, average=average: f1(rows, average),
                               vectorized=True, n_resamples=resamples, batch=max(1, 4_000_000 // n),
                               confidence_level=level, method="percentile", random_state=seed)
            out[average] = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    return out


def with_kappa_intervals(table: pd.DataFrame, y_true, y_pred) -> pd.DataFrame:
    """An :func:`agreement_table` of ``y_pred`` against ``y_true`` with ``kappa_low`` and ``kappa_high`` after kappa.

    The 95% bootstrap interval of each row's kappa (:func:`~opm_nlp.classify.agreement.kappa_intervals`).
    """
    intervals = kappa_intervals(y_true, y_pred)
    ends = np.array([*intervals["per_code"], intervals["micro"], intervals["macro"]], dtype=float)
    out = table.copy()
    at = list(out.columns).index("kappa") + 1
    out.insert(at, "kappa_low", ends[:, 0])
    out.insert(at + 1, "kappa_high", ends[:, 1])
    return out


def format_table(table: pd.DataFrame) -> str:
    """Plain-text rendering of an agreement table for the terminal."""
    shown = table.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: "  -  " if pd.isna(v) else f"{v:.3f}")
    return shown.to_string()


def agreement_report(model, coded: pd.DataFrame, text_col: str, id_col: str,
                     second: pd.DataFrame | None = None, progress: bool = False) -> dict:
    """Agreement of a model with human coders on coded answers it was not trained on.

    Parameters
    ----------
    model : CodingModel
        A trained model.
    coded : DataFrame
        Answers coded by a person (wide format).
    second : DataFrame, optional
        Some or all of the same answers (matched by ``id_col``) coded by a second person.
    progress : bool
        Show a progress bar on stderr while the model tags the answers (from 1,024 answers).

    Returns
    -------
    dict
        ``model_vs_human`` (:func:`agreement_table` with ``kappa_low`` and ``kappa_high``, the 95%
        bootstrap interval of kappa, :func:`~opm_nlp.classify.agreement.kappa_intervals`), ``n_answers``,
        ``f1_intervals`` (95% bootstrap intervals of micro- and macro-F1, :func:`f1_intervals`),
        ``confusion`` (per code: tp, fp, fn, tn of the model against the person), ``reading`` (how to
        read kappa and alpha, :func:`~opm_nlp.classify.agreement.reading_sentence`); with ``second``
        also ``kappa_comparison`` (per code: human-human kappa beside model-human kappa on the
        double-coded answers, and the two people's Krippendorff's alpha and percent agreement) and
        ``n_double_coded``.
    """
    codes = model.codebook.ids
    labels = model.codebook.labels
    predicted = model.tag(coded[[id_col, text_col]], text_col, id_col, carry=[], progress=progress)
    human, machine = coded[codes].to_numpy(), predicted[codes].to_numpy()
    table = with_kappa_intervals(agreement_table(human, machine, codes, labels), human, machine)
    report = {
        "n_answers": int(len(coded)),
        "model_vs_human": table,
        "f1_intervals": {average: list(interval) for average, interval in f1_intervals(human, machine).items()},
        "confusion": dict(zip(codes, confusion_counts(human, machine))),
        "reading": reading_sentence(table.loc["macro", "kappa"],
                                    tuple(table.loc["macro", ["kappa_low", "kappa_high"]])),
    }
    if second is None:
        return report
    both = coded[[id_col, *codes]].merge(second[[id_col, *codes]], on=id_col, suffixes=("", "__2"))
    both = both.merge(predicted[[id_col, *codes]].rename(columns={c: f"{c}__model" for c in codes}), on=id_col)
    if both.empty:
        from opm_nlp.exceptions import DataError

        raise DataError(f"The second coder's file shares no response ids with the first ({id_col}); "
                        f"check that both use the same ids.")
    rows = []
    for code in codes:
        first, other, machine = both[code].to_numpy(), both[f"{code}__2"].to_numpy(), both[f"{code}__model"].to_numpy()
        rows.append({
            "code": code, "label": labels[code],
            "positives_coder1": int(first.sum()), "positives_coder2": int(other.sum()),
            "kappa_human_human": cohen_kappa(first, other),
            "kappa_model_coder1": cohen_kappa(machine, first),
            "kappa_model_coder2": cohen_kappa(machine, other),
            "alpha_human_human": krippendorff_alpha(first, other),
            "agreement_human_human": float((first == other).mean()),
        })
    comparison = pd.DataFrame(rows).set_index("code")
    comparison.loc["macro"] = ["(mean over codes)", int(comparison["positives_coder1"].sum()),
                               int(comparison["positives_coder2"].sum()),
                               *comparison.iloc[:, 3:].mean()]
    report["kappa_comparison"] = comparison
    report["n_double_coded"] = int(len(both))
    return report


def agreement_report_json(report: dict) -> dict:
    """An :func:`agreement_report` as plain data for JSON: its tables as ``{row: {column: value}}``."""
    out = {}
    for key, value in report.items():
        if hasattr(value, "to_dict"):
            out[key] = json.loads(value.to_json(orient="index"))
        else:
            out[key] = value
    return out
