"""Linear scores computed answer by answer: an answer's score does not depend on the rows beside it.

BLAS matrix products (what scikit-learn's ``decision_function`` uses) pick their kernels by the
matrix's shape and a row's place in it, so the same answer scored in another file or chunk could get a
score that differs in its last bits, and a decision at the threshold could flip. Here each row's dot
products are summed on their own, in the same order whatever the other rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit


def row_products(X, W: np.ndarray) -> np.ndarray:
    """``X @ W.T``, shape (rows of X, rows of W), each row of the result computed on its own.

    ``X`` is a dense array or a SciPy sparse matrix (whose product already sums each row on its own).
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    if sp.issparse(X):
        return np.asarray(sp.csr_matrix(X) @ W.T, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    # numpy sums each row's products along the contiguous last axis, the same way for every row
    return np.stack([(X * w).sum(axis=1) for w in W], axis=1)


def linear_scores(model, X) -> np.ndarray:
    """A fitted binary linear model's decision values for ``X`` (as ``model.decision_function``), row by row."""
    return row_products(X, model.coef_)[:, 0] + model.intercept_[0]


def probability(model, X) -> np.ndarray:
    """A fitted binary logistic regression's probability of the positive class (as
    ``model.predict_proba(X)[:, 1]``), row by row."""
    return expit(linear_scores(model, X))
