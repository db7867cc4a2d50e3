"""The heads that bench/bench_fewcoded.py compares: one code's views and stackers, and the extra stacker inputs.

:func:`view` and :func:`stack` are :mod:`opm_nlp.classify.stacking`'s ``_view_scores`` and ``stack``, with
sample weights and a C for the stackers, also scoring validation answers from the refit on all rows.
"""

from __future__ import annotations

import numpy as np

from opm_nlp.classify import stacking
from opm_nlp.classify.stacking import best_sentence


def _logistic(C: float, balanced: bool = True, liblinear: bool = True):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=3000,
                              solver="liblinear" if liblinear else "lbfgs")


def view(X, y, folds, C, liblinear, weight, X_val, sentences=None, sentences_val=None):
    """One view of one code: out-of-fold scores (and best sentence), and the refit's validation scores."""
    from opm_nlp.classify.rowwise import linear_scores

    oof = np.zeros(X.shape[0])
    best = None if sentences is None else np.zeros(X.shape[0])
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        if y[train].min() == y[train].max():
            oof[test] = 10.0 if y[train].max() == 1 else -10.0
            if best is not None:
                best[test] = oof[test]
            continue
        model = _logistic(C, liblinear=liblinear).fit(X[train], y[train], sample_weight=weight[train])
        oof[test] = model.decision_function(X[test])
        if best is not None:
            best[test] = best_sentence(model, oof[test], *sentences, rows=test)
    model = _logistic(C, liblinear=liblinear).fit(X, y, sample_weight=weight)
    val = linear_scores(model, X_val)
    val_best = None if sentences_val is None else best_sentence(model, val, *sentences_val)
    return oof, best, val, val_best


def stack(Z, y, folds, C, Z_val):
    """Cross-fitted probabilities of a stacker (:func:`opm_nlp.classify.stacking.stack`) and its validation ones."""
    oof, stacker = stacking.stack(Z, y, folds, C)
    return oof, stacker.predict_proba(Z_val)[:, 1]


def _unit(X):
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def prototype_view(E, Y, n_answers, E_val):
    """Cosine similarity to the mean of each code's codebook rows (leave-one-out for those rows)."""
    U, U_val = _unit(E), _unit(E_val)
    book, Yb = U[n_answers:], Y[n_answers:].astype(float)
    sums, counts = Yb.T @ book, Yb.sum(axis=0)  # (k, d), (k,)
    train = np.zeros(Y.shape)
    val = U_val @ _unit(sums / np.maximum(counts, 1)[:, None]).T
    for j in range(Y.shape[1]):
        if counts[j] == 0:
            continue
        centroid = _unit(sums[j][None])[0]
        train[:, j] = U @ centroid
        own = np.flatnonzero(Yb[:, j] > 0)
        if counts[j] > 1:  # a codebook row of the code: the mean of the others
            loo = _unit(sums[j][None] - book[own])
            train[n_answers + own, j] = (book[own] * loo).sum(axis=1)
        else:
            train[n_answers + own, j] = 0.0
    return train, val


def _prototypes(U, Y, n_answers):
    """Unit mean of each code's codebook rows (k, d), and each codebook row's leave-one-out one for its code."""
    book, Yb = U[n_answers:], Y[n_answers:].astype(float)
    sums, counts = Yb.T @ book, Yb.sum(axis=0)
    P = _unit(sums / np.maximum(counts, 1)[:, None]) * (counts > 0)[:, None]
    own = {}
    for i, c in zip(*np.nonzero(Yb)):
        own[(n_answers + i, c)] = _unit((sums[c] - book[i])[None])[0] if counts[c] > 1 else np.zeros(U.shape[1])
    return P, own


def pair_view(E, Y, folds, n_answers, E_val, C=1.0):
    """One regression shared by all codes on (answer, code) pairs: features the elementwise product of the
    answer's unit embedding and the code's codebook prototype, so that what makes an answer fit a code's
    prototype is learned from every code at once. Out-of-fold decision values (n, k), and validation ones."""
    from sklearn.linear_model import LogisticRegression

    U, U_val = _unit(E).astype(np.float32), _unit(E_val).astype(np.float32)
    P, own = _prototypes(U, Y, n_answers)
    n, k = Y.shape

    def pairs(rows):
        F = (U[rows][:, None, :] * P[None, :, :]).astype(np.float32)  # (rows, k, d)
        for (i, c), p in own.items():
            where = np.flatnonzero(rows == i)
            if len(where):
                F[where[0], c] = U[i] * p
        return F.reshape(len(rows) * k, -1), Y[rows].reshape(-1)

    def fit(rows):
        F, y = pairs(rows)
        return LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(F, y)

    train = np.zeros((n, k))
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        model = fit(np.flatnonzero(folds != fold))
        train[test] = model.decision_function(pairs(test)[0]).reshape(len(test), k)
    model = fit(np.arange(n))
    val = model.decision_function((U_val[:, None, :] * P[None]).reshape(len(U_val) * k, -1)).reshape(len(U_val), k)
    return train, val


def knn_view(E, Y, folds, E_val):
    """Greatest cosine similarity to the code's positive training rows (other folds; all for validation)."""
    U, U_val = _unit(E), _unit(E_val)
    train = np.zeros(Y.shape)
    for fold in np.unique(folds):
        test, other = folds == fold, folds != fold
        sims = U[test] @ U[other].T
        for j in range(Y.shape[1]):
            pos = Y[other, j] > 0
            train[test, j] = sims[:, pos].max(axis=1) if pos.any() else 0.0
    sims = U_val @ U.T
    val = np.stack([sims[:, Y[:, j] > 0].max(axis=1) if Y[:, j].any() else np.zeros(len(U_val))
                    for j in range(Y.shape[1])], axis=1)
    return train, val


def mean_ap(oofs: np.ndarray, Y: np.ndarray, n_answers: int) -> float:
    """Mean over codes of the average precision of ``oofs`` on the coded answers (the first ``n_answers`` rows)."""
    from sklearn.metrics import average_precision_score

    values = [average_precision_score(Y[:n_answers, j], oofs[:n_answers, j])
              for j in range(Y.shape[1]) if 0 < Y[:n_answers, j].sum() < n_answers]
    return float(np.mean(values))
