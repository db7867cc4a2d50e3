"""What a trained model records about itself: the ``metadata.json`` of its folder.

Versions, the embedding model and its weights hash, the codebook's fingerprint, code order and
thresholds, what it was trained on, cross-validated figures (``cv_metrics``) and, once ``opm-nlp
evaluate --save`` has measured them, held-out figures (``heldout_metrics``,
:mod:`opm_nlp.model.heldout`). The model card (:mod:`opm_nlp.model.card`) is written from it.

:func:`trust_figures` picks the figures to quote (held-out when there are some, else cross-validated)
and :func:`trust_sentence` says them in one line, naming which kind they are.

Examples
--------
>>> from opm_nlp.model.folder import read_model_info
>>> _, metadata = read_model_info("models/opm_default")  # doctest: +SKIP
>>> trust_sentence(metadata)                              # doctest: +SKIP
'Held-out: 120 answers coded by people, micro-F1 0.64, macro-F1 0.62.'
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opm_nlp.classify.agreement import confusion_counts
from opm_nlp.classify.decision import MIN_ANSWERS, DecisionRule, rule_of, suggest
from opm_nlp.classify.metrics import agreement_table, f1_intervals
from opm_nlp.model.folder import FORMAT_VERSION, package_versions

if TYPE_CHECKING:  # pragma: no cover
    from opm_nlp.model.coding_model import CodingModel


def training_metadata(model: CodingModel, Y: np.ndarray, empty: int, sources: list[str] | None,
                      examples: tuple[list[str], np.ndarray] | None, few: list[str],
                      context_col: str | None) -> dict:
    """The metadata of a model just fitted (``files`` is added when it is saved).

    Parameters
    ----------
    model : CodingModel
        The fitted model.
    Y : ndarray of shape (n_answers, n_codes)
        The 0/1 codes of the coded answers it was trained on (answers with text).
    empty : int
        Coded answers left out for empty text.
    sources : list of str, optional
        Names of the files the coded answers came from.
    examples : (texts, Y) or None
        The codebook's examples it also learned from.
    few : list of str
        Codes with too few examples to learn reliably.
    context_col : str, optional
        Column of contexts it was trained with.
    """
    ids = model.codebook.ids
    return {
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "method": model.method,
        "versions": package_versions(),
        "embedding": _embedding(model),
        "codebook": {"name": model.codebook.name, "version": model.codebook.version,
                     "fingerprint": model.codebook.fingerprint},
        "codes": ids,
        "thresholds": {c: round(float(t), 6) for c, t in zip(ids, rule_of(model.classifier).thresholds)},
        "decision": decision_record(rule_of(model.classifier)),
        "review_margin": model.review_margin,
        "context_col": context_col if model.method == "embedding" else None,
        "training": {
            "answers": len(Y),
            "empty_answers_skipped": empty,
            "sources": sources or [],
            "positives": {c: int(p) for c, p in zip(ids, Y.sum(axis=0))},
            "codebook_examples": 0 if examples is None else len(examples[0]),
            "few_examples": few,
        },
        "cv_metrics": cv_metrics(model.classifier, Y, ids),
    }


def _embedding(model: CodingModel) -> dict | None:
    if model.method != "embedding":
        return None
    fine_tuned = getattr(model.classifier, "fine_tuned_", None)
    return {"model": model.embedder.model_id, "weights_sha256": model.embedder.weights_sha256,
            "backend": model.backend, "layers": model.embedder.layers, "fine_tune_epochs": model.classifier.fine_tune,
            "fine_tune_int8": bool(getattr(fine_tuned, "quantize", False)),
            "sentences": bool(getattr(model.classifier, "sentence_view_", False))}


def decision_record(rule: DecisionRule) -> dict:
    """The decision rule as ``metadata.json`` records it: its name, parts and cross-validated figures."""
    return {"rule": rule.name, "shrink": rule.shrink, "shared_threshold": None if rule.shared is None else
            round(float(rule.shared), 6), "cap": rule.cap, "at_least_one": rule.at_least_one, "cv": rule.cv}


def decision_sentence(metadata: dict) -> str | None:
    """One line saying which decision rule a model applies and why, or None for a model that records none.

    ``"Decision rule: shrunk thresholds (k=10) + at most 2 codes per answer, chosen by 5-fold cross-validation
    on 400 coded answers (mean of micro- and macro-F1): micro-F1 0.628, macro-F1 0.451 (per-code thresholds:
    0.599, 0.426)."``
    """
    record = metadata.get("decision")
    if not isinstance(record, dict) or not isinstance(record.get("rule"), str):
        return None
    cv = record.get("cv")
    if not isinstance(cv, dict):
        why = "" if metadata.get("method") != "embedding" else (
            f" (fewer than {MIN_ANSWERS} coded answers: no other rule tried)")
        return f"Decision rule: {record['rule']}{why}."
    chosen, plain = cv.get("chosen") or {}, cv.get("per_code_thresholds") or {}
    return (f"Decision rule: {record['rule']}, chosen by {cv.get('folds')}-fold cross-validation on {cv.get('answers')} "
            f"coded answers ({cv.get('objective')}): micro-F1 {_three(chosen.get('micro_f1'))}, macro-F1 "
            f"{_three(chosen.get('macro_f1'))} (per-code thresholds: {_three(plain.get('micro_f1'))}, "
            f"{_three(plain.get('macro_f1'))}).")


def _three(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def cv_metrics(classifier, Y: np.ndarray, ids: list[str]) -> dict | None:
    """Cross-validated agreement per code and overall, from the classifier's out-of-fold scores.

    ``None`` when there are none (keywords, or the codebook alone: nothing to cross-validate).
    """
    scores = getattr(classifier, "oof_scores_", None)
    if scores is None or len(scores) == 0:
        return None
    predicted = suggest(rule_of(classifier), scores)[0].astype(int)
    table = agreement_table(Y, predicted, ids)
    intervals = f1_intervals(Y, predicted)
    counts = confusion_counts(Y, predicted)
    return {
        "folds": classifier.cv,
        "note": "out-of-fold scores; thresholds and decision rule were chosen on the same folds, so slightly optimistic",
        "per_code": {c: {**{k: _round(table.loc[c, k]) for k in ("precision", "recall", "f1", "kappa")}, **n}
                     for c, n in zip(ids, counts)},
        "micro_f1": _round(table.loc["micro", "f1"]),
        "macro_f1": _round(table.loc["macro", "f1"]),
        # 95% bootstrap intervals over the coded answers (classify.metrics.f1_intervals)
        "micro_f1_interval": [_round(v) for v in intervals["micro"]],
        "macro_f1_interval": [_round(v) for v in intervals["macro"]],
    }


def _round(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)


#: The figures :func:`trust_figures` gives per code.
TRUST_KEYS = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "kappa")
_COUNTS = ("tp", "fp", "fn", "tn")


def trust_figures(metadata: dict) -> dict | None:
    """The agreement figures to quote for a model: held-out when recorded, else cross-validated.

    Parameters
    ----------
    metadata : dict
        A model folder's ``metadata.json``.

    Returns
    -------
    dict or None
        ``kind`` ("held-out" or "cross-validated"), ``answers`` (coded answers measured on), ``data``
        (names of their files), ``micro_f1``, ``macro_f1``, their 95% intervals (``micro_f1_interval``,
        ``macro_f1_interval``; None ends when unknown) and ``per_code``: ``{code: {"tp", "fp", "fn",
        "tn", "precision", "recall", "f1", "kappa"}}``. Metadata written before confusion counts were
        recorded lacks them: they are derived from precision, recall and the training positives when
        those give whole numbers that reproduce F1, else None. ``None`` when the model has neither
        kind of figure (trained on the codebook alone, or keywords).
    """
    # metadata.json is not hashed: a record edited out of shape counts as absent rather than failing
    held = metadata.get("heldout_metrics")
    if isinstance(held, dict) and held.get("per_code") and isinstance(held["per_code"], dict):
        kind, figures, answers, data = "held-out", held, held.get("answers"), list(held.get("data") or [])
    else:
        figures = metadata.get("cv_metrics")
        if not isinstance(figures, dict) or not isinstance(figures.get("per_code"), dict) or not figures["per_code"]:
            return None
        training = metadata.get("training") or {}
        kind, answers, data = "cross-validated", training.get("answers"), list(training.get("sources") or [])
    per_code = {}
    for code, row in figures["per_code"].items():
        row = row if isinstance(row, dict) else {}
        out = {k: row.get(k) for k in TRUST_KEYS}
        if any(out[k] is None for k in _COUNTS) and kind == "cross-validated":
            positives = (metadata.get("training") or {}).get("positives", {}).get(code)
            out.update(_derived_counts(row, positives, answers))
        per_code[code] = out
    return {"kind": kind, "answers": answers, "data": data,
            "micro_f1": figures.get("micro_f1"), "macro_f1": figures.get("macro_f1"),
            "micro_f1_interval": figures.get("micro_f1_interval"),
            "macro_f1_interval": figures.get("macro_f1_interval"), "per_code": per_code}


def _derived_counts(row: dict, positives: int | None, answers: int | None) -> dict:
    """tp/fp/fn/tn from rounded precision and recall and the code's positives, when they pin them down.

    Precision and recall are stored to 4 decimals: ``recall * positives`` then lies within 0.5 of tp
    for up to 10,000 positives, and ``tp / precision`` near the predicted count; the counts are kept
    only when both round cleanly and give back the stored F1.
    """
    unknown = dict.fromkeys(_COUNTS)
    precision, recall, f1 = row.get("precision"), row.get("recall"), row.get("f1")
    if None in (precision, recall, f1, positives, answers) or not precision:
        return unknown  # with no true positive, precision says nothing of the false ones
    tp = recall * positives
    predicted = round(tp) / precision
    if abs(tp - round(tp)) > 0.05 or abs(predicted - round(predicted)) > 0.05:
        return unknown
    tp, predicted = round(tp), round(predicted)
    fp, fn = predicted - tp, positives - tp
    tn = answers - tp - fp - fn
    if min(fp, fn, tn) < 0 or abs(2 * tp / (2 * tp + fp + fn) - f1) > 1e-3:
        return unknown
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def trust_sentence(metadata: dict) -> str:
    """One line naming the figures to quote for a model and which kind they are.

    ``"Held-out: 120 answers coded by people, micro-F1 0.64, macro-F1 0.62."``, else
    ``"Cross-validated on the training answers (optimistic: ...): 387 answers, micro-F1 0.86, macro-F1
    0.83."``, else a line saying there are none and how to measure them.
    """
    figures = trust_figures(metadata)
    if figures is None:
        return ("No agreement figures: the model was not trained on coded answers, nor measured on any "
                "(opm-nlp evaluate MODEL --data HELD_OUT ... --save).")
    f1s = f"micro-F1 {_two(figures['micro_f1'])}, macro-F1 {_two(figures['macro_f1'])}"
    if figures["kind"] == "held-out":
        return f"Held-out: {figures['answers']} answers coded by people, {f1s}."
    return (f"Cross-validated on the training answers (optimistic: the model was tuned on the same answers; "
            f"no held-out figures recorded): {figures['answers']} answers, {f1s}.")


def _two(value) -> str:
    return "–" if value is None else f"{value:.2f}"
