"""Classifiers that suggest codes for answers: scikit-learn estimators, multi-label.

- :class:`EmbeddingClassifier` (the default) learns from human-coded answers, on sentence
  embeddings and word/character n-grams, stacked into calibrated probabilities, with per-code
  decision thresholds chosen by cross-validation.
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
from sklearn.utils.validation import check_is_fitted

from opm_nlp.exceptions import DataError

logger = logging.getLogger(__name__)

#: Below this many positives (or negatives) a code still trains, with a warning; with fewer than 2 it
#: cannot be learned and is never suggested.
MIN_POSITIVES = 5


class FewExamplesWarning(UserWarning):
    """A code has too few positive (or negative) training answers to learn it well.

    Parameters
    ----------
    message : str
        What is wrong, for people.
    code_index : int
        Column of the code in ``Y`` (its position in the codebook), for programs.
    """

    def __init__(self, message: str, code_index: int):
        super().__init__(message)
        self.code_index = code_index


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


def _logistic(C: float, balanced: bool = True, liblinear: bool = True) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=3000,
                              solver="liblinear" if liblinear else "lbfgs")


def _view_scores(X, y: np.ndarray, folds: np.ndarray, C: float, liblinear: bool, sentences=None):
    """One code, one feature view: out-of-fold decision values, and the model refitted on all answers.

    With ``sentences`` (see :func:`_best_sentence`), also the out-of-fold score of each answer's best
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
            best[test] = _best_sentence(model, oof[test], *sentences, rows=test)
    return oof, _logistic(C, liblinear=liblinear).fit(X, y), best


def _best_sentence(model, answer_scores: np.ndarray, S: np.ndarray, owner: np.ndarray,
                   rows: np.ndarray | None = None) -> np.ndarray:
    """Each answer's score by its best sentence: a theme one sentence of a long answer carries.

    ``S`` holds the embeddings of the sentences of the answers that have two or more, ``owner`` the
    answer (row) of each; ``answer_scores`` are ``model``'s scores of the answers (of those ``rows``, a
    boolean mask, selects), kept for answers of one sentence.
    """
    out = np.array(answer_scores, dtype=np.float64)
    if rows is not None:
        keep = rows[owner]
        S, owner = S[keep], (np.cumsum(rows) - 1)[owner[keep]]  # answer row -> its place among the rows
    if len(owner):
        best = np.full(len(out), -np.inf)
        np.maximum.at(best, owner, model.decision_function(S))
        several = np.isfinite(best)
        out[several] = best[several]
    return out


def _stack(Z: np.ndarray, y: np.ndarray, folds: np.ndarray):
    """Cross-fitted calibrated probabilities from the views' out-of-fold scores, and the final stacker."""
    oof = np.zeros(len(y))
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        if y[train].min() == y[train].max():
            oof[test] = y[train].mean()
            continue
        oof[test] = _logistic(1.0, balanced=False, liblinear=False).fit(Z[train], y[train]).predict_proba(Z[test])[:, 1]
    return oof, _logistic(1.0, balanced=False, liblinear=False).fit(Z, y)


def _fit_code(X_lexical, X_embedding, y, folds, C_lexical, C_embedding, fine_tuned=None, sentences=None):
    """One code's views and stackers.

    ``sentences`` (optional; ``(S, owner)``, see :func:`_best_sentence`) adds the view of each answer's
    best sentence under the embedding regression; ``fine_tuned`` (optional) is the fine-tuned network's
    out-of-fold scores, a further view.
    """
    lexical_oof, lexical, _ = _view_scores(X_lexical, y, folds, C_lexical, liblinear=True)
    embedding_oof, embedding, best = _view_scores(X_embedding, y, folds, C_embedding, liblinear=False,
                                                  sentences=sentences)
    views = np.column_stack([lexical_oof, embedding_oof] + ([] if best is None else [best])
                            + ([] if fine_tuned is None else [fine_tuned]))
    oof, stacker = _stack(views, y, folds)
    return views, oof, (lexical, embedding, stacker)


def _others(P: np.ndarray) -> np.ndarray:
    """For each answer and code, the summed probability of all the other codes."""
    return P.sum(axis=1, keepdims=True) - P


class EmbeddingClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier on sentence embeddings and word/character n-grams, calibrated.

    For each code, two class-weighted logistic regressions look at the answer from two sides — its
    sentence embedding (meaning) and TF-IDF word 1-2-grams plus character 2-5-grams (wording) — and a
    third, small logistic regression (the stacker) combines their out-of-fold scores into a calibrated
    probability. The decision threshold of each code is the one that maximises F1 on cross-fitted
    out-of-fold probabilities. Folds are stratified for every code at once (iterative stratification).

    Parameters
    ----------
    embedder : object, optional
        Anything with ``encode(list_of_texts) -> ndarray``; default the packaged all-MiniLM-L6-v2
        (:class:`opm_nlp.embedding.encoder.Embedder`), created on first use.
    C_lexical, C_embedding : float
        Inverse regularisation strength of the n-gram and embedding regressions.
    char_ngrams : bool
        Add character 2-5-grams (robust to typos and word forms) to the word n-grams.
    other_codes : bool
        Let each code's stacker also see the summed probability of the other codes (out of fold), so
        that generic codes can learn that they apply when nothing more specific does.
    sentences : bool
        Also score each sentence of an answer of several sentences with the code's embedding
        regression (trained on whole answers), and give the stacker the best sentence's score as a
        further view: a theme carried by one sentence of a long answer is diluted in the whole
        answer's embedding. Costs embedding those sentences at training and tagging.
    fine_tune : int
        Epochs of fine-tuning the embedding network itself on the coded answers, as a further view
        (:mod:`opm_nlp.classify.finetune`); 0 (the default) leaves it frozen. Needs PyTorch, and minutes of training.
    fine_tune_model : str, optional
        The network to fine-tune (an embedding model id or local folder); default the packaged
        all-MiniLM-L6-v2. Pass the same model as the embedder's.
    cv : int
        Folds for out-of-fold scores (fewer for very small training sets).
    n_jobs : int, optional
        Processes fitting codes in parallel (default: up to 2).
    random_state : int
        Seed of the folds.

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_codes,)
        Decision threshold per code (above 1 for a code that cannot be learned: never suggested).
    n_positives_ : ndarray of shape (n_codes,)
        Training answers with each code.
    oof_scores_ : ndarray of shape (n_answers, n_codes)
        Out-of-fold probabilities of the training answers (for evaluation and calibration reports).
    uses_context_ : bool
        Whether the model was fitted with a context (e.g. the survey question) beside each answer.
    fine_tuned_ : FineTunedHead or None
        The network fine-tuned on all training answers, when ``fine_tune`` > 0.
    sentence_view_ : bool
        Whether the model scores sentences (``sentences``; False for models saved before it existed).

    Examples
    --------
    >>> clf = EmbeddingClassifier().fit(texts, Y)          # doctest: +SKIP
    >>> clf.predict_proba(["I will set goals"]).shape      # doctest: +SKIP
    (1, 12)
    """

    def __init__(self, embedder=None, C_lexical: float = 10.0, C_embedding: float = 3.0, char_ngrams: bool = True,
                 other_codes: bool = True, sentences: bool = True, fine_tune: int = 0,
                 fine_tune_model: str | None = None, cv: int = 5, n_jobs: int | None = None, random_state: int = 0):
        self.embedder = embedder
        self.C_lexical = C_lexical
        self.C_embedding = C_embedding
        self.char_ngrams = char_ngrams
        self.other_codes = other_codes
        self.sentences = sentences
        self.fine_tune = fine_tune
        self.fine_tune_model = fine_tune_model
        self.cv = cv
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- features -------------------------------------------------------------------------
    def _embedder(self):
        if self.embedder is None:
            if not hasattr(self, "embedder_"):
                from opm_nlp.embedding.encoder import Embedder

                self.embedder_ = Embedder()
            return self.embedder_
        return self.embedder

    @staticmethod
    def _with_context(texts: list[str], contexts) -> list[str]:
        if contexts is None:
            return texts
        return [f"{c} {t}".strip() for c, t in zip(contexts, texts)]

    def _lexical(self, texts: list[str], contexts, fit: bool):
        if fit:
            min_df = 2 if len(texts) >= 200 else 1
            self.vectorizers_ = [TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True,
                                                 strip_accents="unicode")]
            if self.char_ngrams:
                self.vectorizers_.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=min_df,
                                                         sublinear_tf=True, max_features=100_000))
            if contexts is not None:
                from sklearn.preprocessing import OneHotEncoder

                self.context_encoder_ = OneHotEncoder(handle_unknown="ignore")
        blocks = [v.fit_transform(texts) if fit else self._transform(v, texts) for v in self.vectorizers_]
        if contexts is not None:
            column = np.asarray(contexts, dtype=object).reshape(-1, 1)
            encoder = self.context_encoder_
            blocks.append(encoder.fit_transform(column) if fit else encoder.transform(column))
        return sp.hstack(blocks, format="csr")

    def _transform(self, vectorizer: TfidfVectorizer, texts: list[str]):
        """``vectorizer.transform(texts)``; for character n-grams within words, the same matrix faster.

        Character n-grams never cross a word boundary, so an answer's n-grams are those of its words
        in turn: each distinct word is split and looked up in the vocabulary once, not in every answer.
        """
        tfidf = getattr(vectorizer, "_tfidf", None)
        if vectorizer.analyzer != "char_wb" or vectorizer.binary or tfidf is None:
            return vectorizer.transform(texts)
        memo = self.__dict__.setdefault("_word_ngrams", {})
        if len(memo) > 500_000:  # bounded, so memory stays flat however many answers are tagged
            memo.clear()
        vocabulary, preprocess = vectorizer.vocabulary_, vectorizer.build_preprocessor()
        indices, indptr = [], [0]
        for text in texts:
            for word in preprocess(vectorizer.decode(text)).split():
                found = memo.get(word)
                if found is None:
                    grams = vectorizer._char_wb_ngrams(word)
                    found = memo[word] = [vocabulary[g] for g in grams if g in vocabulary]
                indices += found
            indptr.append(len(indices))
        counts = sp.csr_matrix((np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
                               shape=(len(texts), len(vocabulary)))
        counts.sum_duplicates()
        return tfidf.transform(counts, copy=False)

    def _sentences(self, texts: list[str], contexts, progress: str | None = None):
        """``(S, owner)``: embeddings of the sentences of the answers that have two or more, and the
        row of the answer each belongs to (see :func:`_best_sentence`)."""
        from opm_nlp.embedding.segment import sentences

        pieces, owner = [], []
        for row, parts in enumerate(sentences(texts)):
            if len(parts) > 1:
                pieces += parts
                owner += [row] * len(parts)
        owner = np.asarray(owner, dtype=np.int64)
        if not pieces:
            return np.zeros((0, 1)), owner
        context = None if contexts is None else [contexts[row] for row in owner]
        return self._embedding(pieces, context, progress=progress), owner

    def _embedding(self, texts: list[str], contexts, progress: str | None = None) -> np.ndarray:
        embedder = self._embedder()
        showing = getattr(embedder, "show_progress", None)
        if progress and showing is not None:  # an Embedder; other embedders show nothing
            embedder.show_progress = progress
        try:
            return np.asarray(embedder.encode(self._with_context(texts, contexts)), dtype=np.float64)
        finally:
            if progress and showing is not None:
                embedder.show_progress = showing

    # -- estimator API ----------------------------------------------------------------------
    def fit(self, X: Sequence[str], Y, contexts: Sequence[str] | None = None,
            examples: tuple[Sequence[str], np.ndarray] | None = None, progress: bool = False) -> EmbeddingClassifier:
        """Fit on answer texts ``X`` and their 0/1 code matrix ``Y``.

        ``contexts`` (optional, one string per answer) is what the answer responds to, e.g. the survey
        question when one file holds answers to several; the same kind of context is then needed to
        predict.

        ``examples`` (optional) are the codebook's own example texts and their 0/1 codes, learned beside
        the coded answers: with few answers coded yet they carry the model; with many they weigh little.
        ``X`` may then be empty (a model from the codebook alone).

        ``progress`` shows progress bars on stderr of the slow steps: embedding the answers (when the
        embedder can show one), fine-tuning, and learning each code.
        """
        if not (isinstance(self.cv, int) and self.cv >= 2):
            raise DataError(f"The 'cv' parameter of EmbeddingClassifier must be an int >= 2. Got {self.cv!r} instead.")
        if not (isinstance(self.fine_tune, int) and self.fine_tune >= 0):
            raise DataError(f"The 'fine_tune' parameter of EmbeddingClassifier must be an int >= 0 (epochs). "
                            f"Got {self.fine_tune!r} instead.")
        for name in ("C_lexical", "C_embedding"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise DataError(f"The '{name}' parameter of EmbeddingClassifier must be a float > 0. "
                                f"Got {value!r} instead.")
        texts = [str(x) for x in X]
        contexts = None if contexts is None else [str(c) for c in contexts]
        n_answers = len(texts)
        if examples is not None:
            example_texts, example_Y = examples
            example_Y = np.asarray(example_Y)
            Y = np.asarray(Y) if n_answers else np.zeros((0, example_Y.shape[1]), dtype=np.int8)
            texts = texts + [str(t) for t in example_texts]
            Y = np.vstack([Y, example_Y])
            if contexts is not None:
                contexts = contexts + [""] * len(example_texts)
        texts, Y = _check_xy(texts, Y)
        n, k = Y.shape
        self.n_positives_ = Y[:n_answers].sum(axis=0)
        self.n_examples_ = n - n_answers
        for j in np.flatnonzero((self.n_positives_ < MIN_POSITIVES) | (n_answers - self.n_positives_ < MIN_POSITIVES)):
            warnings.warn(FewExamplesWarning(
                f"Code #{j} has {int(self.n_positives_[j])} positive answers of {n_answers}; its suggestions "
                f"will be unreliable. Code more answers with it.", int(j)), stacklevel=2)
        folds = self._folds(Y)
        self.uses_context_ = contexts is not None
        X_lexical = self._lexical(texts, contexts, fit=True)
        X_embedding = self._embedding(texts, contexts, progress="embedding answers" if progress else None)
        self.sentence_view_ = bool(self.sentences)
        sentences = (self._sentences(texts, contexts, progress="embedding sentences" if progress else None)
                     if self.sentence_view_ else None)
        fine_tuned = self._fine_tune(texts, Y, contexts, progress)
        # a code needs two positives and two negatives to be learned at all; the others score their prior
        positives = Y.sum(axis=0)
        self.prior_ = (positives + 0.5) / (n + 1.0)
        learnable = np.flatnonzero((positives >= 2) & (n - positives >= 2))
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm

        jobs = self.n_jobs if self.n_jobs is not None else min(2, len(learnable) or 1)
        # copy-on-write memmaps: liblinear needs writeable arrays, joblib shares large ones read-only
        fitted = Parallel(n_jobs=jobs, mmap_mode="c", return_as="generator")(
            delayed(_fit_code)(X_lexical, X_embedding, Y[:, j], folds, self.C_lexical, self.C_embedding,
                               None if fine_tuned is None else fine_tuned[:, j], sentences)
            for j in learnable)
        results = list(tqdm(fitted, total=len(learnable), desc="learning codes", unit="code", disable=not progress))
        oof_scores = np.tile(self.prior_, (n, 1))
        self.heads_ = {}
        for j, (_, oof, head) in zip(learnable, results):
            oof_scores[:, j] = oof
            self.heads_[int(j)] = head
        if self.other_codes and k > 1:
            # a second stacker per code also sees how strongly the other codes apply: generic codes
            # ("thanks, all good") are the ones left when nothing more specific is said
            others = _others(oof_scores)
            oof_scores = oof_scores.copy()
            for j, (views, _, head) in zip(learnable, results):
                oof_scores[:, j], second = _stack(np.column_stack([views, others[:, j]]), Y[:, j], folds)
                self.heads_[int(j)] = (*head, second)
        self.thresholds_ = np.full(k, 1.01)
        for j in learnable:
            self.thresholds_[j] = best_threshold(Y[:, j], oof_scores[:, j])
        self.oof_scores_ = oof_scores[:n_answers]
        self.n_codes_ = k
        return self

    def _fine_tune(self, texts: list[str], Y: np.ndarray, contexts, progress: bool = False) -> np.ndarray | None:
        """With ``fine_tune``: the fine-tuned view's cross-fitted scores of the training answers (and
        ``fine_tuned_``, the network fine-tuned on all of them); else None."""
        self.fine_tuned_ = None
        if not self.fine_tune:
            return None
        from opm_nlp.classify.finetune import cross_fitted

        oof, self.fine_tuned_ = cross_fitted(self._with_context(texts, contexts), Y, self._folds(Y, splits=2),
                                             model=self.fine_tune_model, epochs=self.fine_tune,
                                             seed=self.random_state, progress=progress)
        return oof

    def _folds(self, Y: np.ndarray, splits: int | None = None) -> np.ndarray:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        n = Y.shape[0]
        if splits is None:
            splits = int(max(2, min(self.cv, n // 10 if n >= 20 else 2)))
        folds = np.zeros(n, dtype=int)
        if Y.shape[1] == 1:  # iterative stratification wants two or more codes
            from sklearn.model_selection import KFold, StratifiedKFold

            y = Y[:, 0]
            rare = min(y.sum(), n - y.sum())
            splitter = (StratifiedKFold if rare >= splits else KFold)(splits, shuffle=True,
                                                                     random_state=self.random_state)
            parts = splitter.split(np.zeros((n, 1)), y)
        else:
            splitter = MultilabelStratifiedKFold(n_splits=splits, shuffle=True, random_state=self.random_state)
            parts = splitter.split(np.zeros((n, 1)), Y)
        for fold, (_, test) in enumerate(parts):
            folds[test] = fold
        return folds

    def predict_proba(self, X: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated probability of each code for each answer, shape (n_answers, n_codes)."""
        check_is_fitted(self, "heads_")
        texts = [str(x) for x in X]
        if self.uses_context_ and contexts is None:
            raise DataError("This model was trained with a context column (e.g. the survey question); "
                            "pass the same column when tagging.")
        contexts = [str(c) for c in contexts] if (self.uses_context_ and contexts is not None) else None
        out = np.tile(self.prior_, (len(texts), 1))
        if not texts or not self.heads_:
            return out
        X_lexical = self._lexical(texts, contexts, fit=False)
        X_embedding = self._embedding(texts, contexts)
        fine_tuned = getattr(self, "fine_tuned_", None)  # None also for models saved before fine-tuning
        if fine_tuned is not None:
            embedder = self._embedder()  # the fine-tuned network runs as the embedding model does
            fine_tuned = fine_tuned.decision_function(
                self._with_context(texts, contexts), backend="torch" if getattr(embedder, "backend", None) == "torch"
                else "onnx", cache=getattr(embedder, "cache", True))
        sentences = self._sentences(texts, contexts) if getattr(self, "sentence_view_", False) else None
        views = {}
        for j, (lexical, embedding, stacker, *_) in self.heads_.items():
            scores = embedding.decision_function(X_embedding)
            views[j] = np.column_stack([lexical.decision_function(X_lexical), scores]
                                       + ([] if sentences is None else [_best_sentence(embedding, scores, *sentences)])
                                       + ([] if fine_tuned is None else [fine_tuned[:, j]]))
            out[:, j] = stacker.predict_proba(views[j])[:, 1]
        others = _others(out)
        for j, (*_, second) in ((j, head) for j, head in self.heads_.items() if len(head) == 4):
            out[:, j] = second.predict_proba(np.column_stack([views[j], others[:, j]]))[:, 1]
        return out

    def predict(self, X: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """0/1 suggestions: probability at or above each code's threshold."""
        return (self.predict_proba(X, contexts) >= self.thresholds_).astype(np.int8)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("embedder_", None)  # the embedding model is recorded by id, never pickled
        state.pop("_word_ngrams", None)  # a cache of _transform
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
