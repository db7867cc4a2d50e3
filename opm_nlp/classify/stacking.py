"""Cross-fitting: one code's views of the answers, stacked into a calibrated probability; its threshold.

The embedding classifier learns each code on its own, on folds of the answers stratified for all codes
at once (:func:`stratified_folds`). :func:`fit_code` fits a class-weighted logistic regression per
feature view (n-grams, embeddings); from their cross-fitted (out-of-fold) decision values, the best
sentence's score (:func:`best_sentence`) and the fine-tuned network's scores when there are any, a
small logistic regression, the stacker (:func:`stack`), learns a calibrated probability, and a second
one may also see how strongly the other codes apply (:func:`others_probability`).
:func:`best_threshold` chooses the code's decision threshold on the out-of-fold probabilities.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from opm_nlp.classify.rowwise import linear_scores


def best_threshold(y: np.ndarray, scores: np.ndarray, default: float = 0.5) -> float:
    """The score threshold that maximises F1 of ``scores >= threshold`` against ``y``.

    Ties go to the threshold nearest ``default``; with no positives, ``default`` is returned.
    """
    if y.sum() == 0 or y.sum() == len(y):
        return default
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_y = scores[order], y[order]
    tp = np.cumsum(sorted_y)
    predicted = np.arange(1, len(y) + 1)
    f1 = 2 * tp / (predicted + y.sum())
    # only cut between distinct scores
    distinct = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    f1 = np.where(distinct, f1, -1)
    best = f1.max()
    candidates = np.flatnonzero(f1 >= best - 1e-12)
    cuts = []
    for i in candidates:
        upper = sorted_scores[i]
        lower = sorted_scores[i + 1] if i + 1 < len(sorted_scores) else 0.0
        cuts.append((upper + lower) / 2 if lower < upper else upper)
    cuts = np.asarray(cuts)
    return float(cuts[np.argmin(np.abs(cuts - default))])


def stratified_folds(Y: np.ndarray, splits: int, random_state: int) -> np.ndarray:
    """The fold (0 to ``splits`` - 1) of each answer, stratified for every code at once.

    Iterative stratification keeps each code's share of positives alike across folds; with one code,
    plain stratified folds (or unstratified ones when it has fewer positives, or negatives, than folds).
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    n = Y.shape[0]
    folds = np.zeros(n, dtype=int)
    if Y.shape[1] == 1:  # iterative stratification wants two or more codes
        from sklearn.model_selection import KFold, StratifiedKFold

        y = Y[:, 0]
        rare = min(y.sum(), n - y.sum())
        splitter = (StratifiedKFold if rare >= splits else KFold)(splits, shuffle=True, random_state=random_state)
        parts = splitter.split(np.zeros((n, 1)), y)
    else:
        splitter = MultilabelStratifiedKFold(n_splits=splits, shuffle=True, random_state=random_state)
        parts = splitter.split(np.zeros((n, 1)), Y)
    for fold, (_, test) in enumerate(parts):
        folds[test] = fold
    return folds


def _logistic(C: float, balanced: bool = True, liblinear: bool = True) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=3000,
                              solver="liblinear" if liblinear else "lbfgs")


def _view_scores(X, y: np.ndarray, folds: np.ndarray, C: float, liblinear: bool, sentences=None):
    """One code, one feature view: out-of-fold decision values, and the model refitted on all answers.

    With ``sentences`` (see :func:`best_sentence`), also the out-of-fold score of each answer's best
    sentence; else None.
    """
    oof = np.zeros(X.shape[0])
    best = None if sentences is None else np.zeros(X.shape[0])
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        if y[train].min() == y[train].max():  # this part has no positives (or no negatives)
            oof[test] = 10.0 if y[train].max() == 1 else -10.0
            if best is not None:
                best[test] = oof[test]
            continue
        model = _logistic(C, liblinear=liblinear).fit(X[train], y[train])
        oof[test] = model.decision_function(X[test])
        if best is not None:
            best[test] = best_sentence(model, oof[test], *sentences, rows=test)
    return oof, _logistic(C, liblinear=liblinear).fit(X, y), best


def best_sentence(model, answer_scores: np.ndarray, S: np.ndarray, owner: np.ndarray,
                  rows: np.ndarray | None = None, sentence_scores: np.ndarray | None = None) -> np.ndarray:
    """Each answer's score by its best sentence: a theme one sentence of a long answer carries.

    ``S`` holds the embeddings of the sentences of the answers that have two or more, ``owner`` the
    answer (row) of each; ``answer_scores`` are ``model``'s scores of the answers (of those ``rows``, a
    boolean mask, selects), kept for answers of one sentence. ``sentence_scores``, if given, are
    ``model``'s scores of ``S`` already computed (without ``rows``).
    """
    out = np.array(answer_scores, dtype=np.float64)
    if rows is not None:
        keep = rows[owner]
        S, owner = S[keep], (np.cumsum(rows) - 1)[owner[keep]]  # answer row -> its place among the rows
    if len(owner):
        best = np.full(len(out), -np.inf)
        np.maximum.at(best, owner, linear_scores(model, S) if sentence_scores is None else sentence_scores)
        several = np.isfinite(best)
        out[several] = best[several]
    return out


def stack(Z: np.ndarray, y: np.ndarray, folds: np.ndarray, C: float = 1.0):
    """Cross-fitted calibrated probabilities from the views' out-of-fold scores, and the final stacker
    (a logistic regression of inverse regularisation strength ``C``).

    Returns
    -------
    oof : ndarray of shape (n_answers,)
        Each answer's probability from a stacker fitted on the other folds (the prior of the training
        part where it has one class only).
    stacker : LogisticRegression
        The stacker fitted on all answers.
    """
    oof = np.zeros(len(y))
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        if y[train].min() == y[train].max():
            oof[test] = y[train].mean()
            continue
        oof[test] = _logistic(C, balanced=False, liblinear=False).fit(Z[train], y[train]).predict_proba(Z[test])[:, 1]
    return oof, _logistic(C, balanced=False, liblinear=False).fit(Z, y)


def fit_code(X_lexical, X_embedding, y, folds, C_lexical, C_embedding, fine_tuned=None, sentences=None):
    """One code's views and stackers.

    ``sentences`` (optional; ``(S, owner)``, see :func:`best_sentence`) adds the view of each answer's
    best sentence under the embedding regression; ``fine_tuned`` (optional) is the fine-tuned network's
    out-of-fold scores, a further view.

    Returns
    -------
    views : ndarray of shape (n_answers, n_views)
        The views' out-of-fold scores, the stacker's inputs.
    oof : ndarray of shape (n_answers,)
        Cross-fitted probabilities (see :func:`stack`).
    head : tuple
        The n-gram and embedding regressions and the stacker, each fitted on all answers.
    """
    lexical_oof, lexical, _ = _view_scores(X_lexical, y, folds, C_lexical, liblinear=True)
    embedding_oof, embedding, best = _view_scores(X_embedding, y, folds, C_embedding, liblinear=False,
                                                  sentences=sentences)
    views = np.column_stack([lexical_oof, embedding_oof] + ([] if best is None else [best])
                            + ([] if fine_tuned is None else [fine_tuned]))
    oof, stacker = stack(views, y, folds)
    return views, oof, (lexical, embedding, stacker)


def others_probability(P: np.ndarray) -> np.ndarray:
    """For each answer and code, the summed probability of all the other codes."""
    return P.sum(axis=1, keepdims=True) - P
