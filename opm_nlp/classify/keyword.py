"""The keyword classifier: a stem-word query per code, as the OPM study counted themes.

:class:`KeywordClassifier` needs no training data: a code applies when an answer contains one of the
code's keywords (the codebook's ``keywords``), a keyword being one or more word stems, each matching a
word or its lemma that starts with it. It follows the scikit-learn contract of the embedding
classifier (``fit``, ``predict_proba``, ``predict``, ``thresholds_``), with scores of 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


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
        from opm_nlp.embedding.segment import words

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
        from opm_nlp.embedding.segment import words

        tokens = words([str(x) for x in X])
        out = np.zeros((len(tokens), self.n_codes_))
        for i, answer in enumerate(tokens):
            for j, queries in enumerate(self.queries_):
                out[i, j] = float(any(self._matches(answer, stems) for stems in queries))
        return out

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """0/1 matches."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
