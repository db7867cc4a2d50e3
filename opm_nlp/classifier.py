"""Classifiers that suggest codes for answers: scikit-learn estimators, multi-label.

- :class:`EmbeddingClassifier` (the default) learns from human-coded answers, on sentence
  embeddings and word features, with per-code decision thresholds chosen by cross-validation.
- :class:`KeywordClassifier` reproduces a stem-word query (the OPM study's method): a code applies
  when the answer contains one of its keyword stems. It needs no training data.

Both take ``X`` as a sequence of answer texts and ``Y`` as an (n_answers, n_codes) 0/1 array, and
return scores in [0, 1] from ``predict_proba``; ``predict`` applies the thresholds in ``thresholds_``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from opm_nlp.exceptions import DataError

logger = logging.getLogger(__name__)

#: Below this many positives a code still trains, with a warning; thresholds fall back to 0.5
#: when there are too few positives to choose one by cross-validation.
MIN_POSITIVES = 5


class FewExamplesWarning(UserWarning):
    """A code has too few positive (or negative) training answers to learn it well."""


def _check_xy(X: Sequence[str], Y) -> tuple[list[str], np.ndarray]:
    texts = [str(x) for x in X]
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise DataError(f"Y must be a 2-D 0/1 array (answers x codes); got shape {Y.shape}.")
    if Y.shape[0] != len(texts):
        raise DataError(f"X has {len(texts)} answers but Y has {Y.shape[0]} rows.")
    if not np.isin(Y, (0, 1)).all():
        raise DataError("Y must contain only 0 and 1.")
    if len(texts) < 2:
        raise DataError(f"Need at least 2 coded answers to train; got {len(texts)}.")
    return texts, Y.astype(np.int8)


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


class EmbeddingClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier on sentence embeddings plus word n-grams.

    One logistic regression per code on ``[answer embedding, TF-IDF word 1-2-grams]``, weighted for
    class imbalance; each code's decision threshold is the one that maximises F1 on out-of-fold
    scores from ``cv``-fold cross-validation.

    Parameters
    ----------
    embedder : object, optional
        Anything with ``encode(list_of_texts) -> ndarray``; default the packaged all-MiniLM-L6-v2
        (:class:`opm_nlp.embedding.Embedder`), created on first use.
    C : float
        Inverse regularisation strength of each logistic regression.
    lexical : bool
        Add TF-IDF word 1-2-gram features to the embeddings.
    cv : int
        Folds used to choose thresholds (and report cross-validated scores).
    class_weight : {'balanced', None}
        Passed to :class:`~sklearn.linear_model.LogisticRegression`.
    random_state : int
        Seed for the folds.

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_codes,)
        Decision threshold per code.
    n_positives_ : ndarray of shape (n_codes,)
        Training answers with each code.
    oof_scores_ : ndarray of shape (n_answers, n_codes)
        Out-of-fold scores of the training answers (for evaluation and calibration reports).
    """

    def __init__(self, embedder=None, C: float = 4.0, lexical: bool = True, cv: int = 5,
                 class_weight: str | None = "balanced", random_state: int = 0):
        self.embedder = embedder
        self.C = C
        self.lexical = lexical
        self.cv = cv
        self.class_weight = class_weight
        self.random_state = random_state

    # -- features -------------------------------------------------------------------------
    def _embedder(self):
        if self.embedder is None:
            if not hasattr(self, "embedder_"):
                from opm_nlp.embedding import Embedder

                self.embedder_ = Embedder()
            return self.embedder_
        return self.embedder

    def _features(self, texts: list[str], vectorizer: TfidfVectorizer | None, embeddings=None):
        if embeddings is None:
            embeddings = self._embedder().encode(texts)
        blocks = [sp.csr_matrix(embeddings)]
        if vectorizer is not None:
            blocks.append(vectorizer.transform(texts))
        return sp.hstack(blocks, format="csr")

    def _new_vectorizer(self) -> TfidfVectorizer | None:
        if not self.lexical:
            return None
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True,
                               strip_accents="unicode", max_features=50000)

    def _fit_heads(self, features, Y: np.ndarray) -> list:
        heads = []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            if y.min() == y.max():
                heads.append(float(y[0]))  # constant: no answer (or every answer) has the code
                continue
            model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000,
                                       solver="liblinear")
            heads.append(model.fit(features, y))
        return heads

    @staticmethod
    def _score(heads: list, features) -> np.ndarray:
        out = np.empty((features.shape[0], len(heads)))
        for j, head in enumerate(heads):
            out[:, j] = head if isinstance(head, float) else head.predict_proba(features)[:, 1]
        return out

    # -- estimator API ----------------------------------------------------------------------
    def fit(self, X: Sequence[str], Y) -> EmbeddingClassifier:
        """Fit on answer texts ``X`` and their 0/1 code matrix ``Y``."""
        if self.class_weight not in ("balanced", None):
            raise DataError(
                f"The 'class_weight' parameter of EmbeddingClassifier must be 'balanced' or None. "
                f"Got {self.class_weight!r} instead."
            )
        if not (isinstance(self.cv, int) and self.cv >= 2):
            raise DataError(f"The 'cv' parameter of EmbeddingClassifier must be an int >= 2. Got {self.cv!r} instead.")
        texts, Y = _check_xy(X, Y)
        self.n_positives_ = Y.sum(axis=0)
        n = len(texts)
        for j in np.flatnonzero((self.n_positives_ < MIN_POSITIVES) | (n - self.n_positives_ < MIN_POSITIVES)):
            warnings.warn(
                f"Code #{j} has {int(self.n_positives_[j])} positive answers of {n}; its suggestions "
                f"will be unreliable. Code more answers with it.", FewExamplesWarning, stacklevel=2)

        embeddings = self._embedder().encode(texts)
        self.oof_scores_ = np.zeros(Y.shape, dtype=float)
        folds = min(self.cv, n)
        for train, test in KFold(folds, shuffle=True, random_state=self.random_state).split(texts):
            vectorizer = self._new_vectorizer()
            train_texts = [texts[i] for i in train]
            if vectorizer is not None:
                vectorizer.fit(train_texts)
            heads = self._fit_heads(self._features(train_texts, vectorizer, embeddings[train]), Y[train])
            self.oof_scores_[test] = self._score(heads, self._features([texts[i] for i in test], vectorizer,
                                                                      embeddings[test]))
        self.thresholds_ = np.array([
            best_threshold(Y[:, j], self.oof_scores_[:, j]) if min(self.n_positives_[j], n - self.n_positives_[j]) >= folds
            else 0.5
            for j in range(Y.shape[1])
        ])
        self.vectorizer_ = self._new_vectorizer()
        if self.vectorizer_ is not None:
            self.vectorizer_.fit(texts)
        self.heads_ = self._fit_heads(self._features(texts, self.vectorizer_, embeddings), Y)
        self.n_codes_ = Y.shape[1]
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Score of each code for each answer, shape (n_answers, n_codes)."""
        check_is_fitted(self, "heads_")
        texts = [str(x) for x in X]
        if not texts:
            return np.zeros((0, self.n_codes_))
        return self._score(self.heads_, self._features(texts, self.vectorizer_))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """0/1 suggestions: score at or above each code's threshold."""
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int8)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("embedder_", None)  # the embedding model is recorded by id, never pickled
        if state.get("embedder") is not None:
            state["embedder"] = None
        return state


class KeywordClassifier(ClassifierMixin, BaseEstimator):
    """Stem-word query: a code applies when the answer contains one of its keyword stems.

    A keyword is one or more word stems; a stem matches a word (or its lemma) that starts with it,
    and a phrase matches consecutive words. This reproduces the counting method of the OPM study.

    Parameters
    ----------
    keywords : sequence of sequence of str
        For each code, its keywords (the codebook's ``keywords``).

    Examples
    --------
    >>> clf = KeywordClassifier([["expect"], ["idp", "development plan"]]).fit(["x"], [[0, 0]])
    >>> clf.predict(["Revisit expectations", "Use an IDP", "Write a development plan"]).tolist()
    [[1, 0], [0, 1], [0, 1]]
    """

    def __init__(self, keywords: Sequence[Sequence[str]] = ()):
        self.keywords = keywords

    def fit(self, X: Sequence[str] = (), Y=None) -> KeywordClassifier:
        """Prepare the queries (training data is not used; it is accepted for a uniform API)."""
        from opm_nlp.segment import words

        phrases = [list(kws) for kws in self.keywords]
        flat = [kw for kws in phrases for kw in kws]
        tokenised = words(flat)
        self.queries_ = []
        position = 0
        for kws in phrases:
            queries = []
            for _ in kws:
                stems = [w for w, _ in tokenised[position]]
                if stems:
                    queries.append(stems)
                position += 1
            self.queries_.append(queries)
        self.thresholds_ = np.full(len(phrases), 0.5)
        self.n_codes_ = len(phrases)
        return self

    @staticmethod
    def _matches(tokens: list[tuple[str, str]], stems: list[str]) -> bool:
        width = len(stems)
        for start in range(len(tokens) - width + 1):
            if all(tokens[start + k][0].startswith(stem) or tokens[start + k][1].startswith(stem)
                   for k, stem in enumerate(stems)):
                return True
        return False

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """1.0 where an answer matches one of a code's keywords, else 0.0."""
        check_is_fitted(self, "queries_")
        from opm_nlp.segment import words

        tokens = words([str(x) for x in X])
        out = np.zeros((len(tokens), self.n_codes_))
        for i, answer in enumerate(tokens):
            for j, queries in enumerate(self.queries_):
                out[i, j] = float(any(self._matches(answer, stems) for stems in queries))
        return out

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """0/1 matches."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
