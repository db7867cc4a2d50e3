"""What a trained model records about itself: the ``metadata.json`` of its folder.

Versions, the embedding model and its weights hash, the codebook's fingerprint, code order and
thresholds, what it was trained on, and cross-validated figures. The model card
(:mod:`opm_nlp.model.card`) is written from it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

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
        "thresholds": {c: round(float(t), 6) for c, t in zip(ids, model.classifier.thresholds_)},
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
    return {"model": model.embedder.model_id, "weights_sha256": model.embedder.weights_sha256,
            "backend": model.backend, "layers": model.embedder.layers, "fine_tune_epochs": model.classifier.fine_tune,
            "sentences": bool(getattr(model.classifier, "sentence_view_", False))}


def cv_metrics(classifier, Y: np.ndarray, ids: list[str]) -> dict | None:
    """Cross-validated agreement per code and overall, from the classifier's out-of-fold scores.

    ``None`` when there are none (keywords, or the codebook alone: nothing to cross-validate).
    """
    scores = getattr(classifier, "oof_scores_", None)
    if scores is None or len(scores) == 0:
        return None
    predicted = (scores >= classifier.thresholds_).astype(int)
    table = agreement_table(Y, predicted, ids)
    intervals = f1_intervals(Y, predicted)
    return {
        "folds": classifier.cv,
        "note": "out-of-fold scores; thresholds were chosen on the same folds, so slightly optimistic",
        "per_code": {c: {k: _round(table.loc[c, k]) for k in ("precision", "recall", "f1", "kappa")}
                     for c in ids},
        "micro_f1": _round(table.loc["micro", "f1"]),
        "macro_f1": _round(table.loc["macro", "f1"]),
        # 95% bootstrap intervals over the coded answers (classify.metrics.f1_intervals)
        "micro_f1_interval": [_round(v) for v in intervals["micro"]],
        "macro_f1_interval": [_round(v) for v in intervals["macro"]],
    }


def _round(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)
