"""The embedding classifier, which suggests codes for answers: a multi-label scikit-learn estimator.

:class:`EmbeddingClassifier` (the default) learns from human-coded answers, on sentence embeddings
and word/character n-grams, stacked into calibrated probabilities (:mod:`opm_nlp.classify.stacking`),
with a decision rule chosen by cross-validation (:mod:`opm_nlp.classify.decision`). Like the keyword classifier
(:class:`~opm_nlp.classify.keyword.KeywordClassifier`, a stem-word query that needs no training data),
it takes ``X`` as a sequence of answer texts and ``Y`` as an (n_answers, n_codes) 0/1 array, returns
scores in [0, 1] from ``predict_proba``, and ``predict`` applies the decision rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin

from opm_nlp.classify.decision import DecisionRule, choose_rule, rule_of, suggest
from opm_nlp.classify.features import ngram_vectorizers, transform
from opm_nlp.classify.evidence import score_answers
from opm_nlp.classify.sentence_view import embed_answers, fitted_recipe
from opm_nlp.classify.stacking import best_threshold, fit_code, others_probability, stack, stratified_folds
from opm_nlp.embedding.onepass import SENTENCE_RECIPES
from opm_nlp.exceptions import DataError

#: Below this many positives (or negatives) a code still trains, with a warning; with fewer than 2 it
#: cannot be learned and is never suggested.
MIN_POSITIVES = 5


class FewExamplesWarning(UserWarning):
    """A code has too few positive (or negative) training answers to learn it well.

    Parameters
    ----------
    message : str
        The warning's text.
    code_index : int
        The code's column in the training ``Y``.

    Attributes
    ----------
    code_index : int
        The code's column in the training ``Y``, for callers that name the code.
    """

    def __init__(self, message: str, code_index: int):
        super().__init__(message)
        self.code_index = code_index

    def __reduce__(self):
        return type(self), (str(self), self.code_index)


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


def _with_examples(texts: list[str], Y, contexts: list[str] | None,
                   examples) -> tuple[list[str], np.ndarray, list[str] | None]:
    """The coded answers followed by the codebook's ``examples`` (texts and 0/1 codes; empty contexts)."""
    if examples is None:
        return texts, np.asarray(Y), contexts
    example_texts, example_Y = examples
    example_Y = np.asarray(example_Y)
    Y = np.asarray(Y) if len(texts) else np.zeros((0, example_Y.shape[1]), dtype=np.int8)
    if contexts is not None:
        contexts = contexts + [""] * len(example_texts)
    return texts + [str(t) for t in example_texts], np.vstack([Y, example_Y]), contexts


class EmbeddingClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier on sentence embeddings and word/character n-grams, calibrated.

    For each code, two class-weighted logistic regressions look at the answer from two sides — its
    sentence embedding (meaning) and TF-IDF word 1-2-grams plus character 2-5-grams (wording) — and a
    third, small logistic regression (the stacker) combines their out-of-fold scores into a calibrated
    probability. The decision threshold of each code is the one that maximises F1 on cross-fitted
    out-of-fold probabilities; with ``decision="auto"``, those thresholds may be shrunk toward a shared
    one and each answer given at most as many codes as people give, as cross-validation on the same
    scores chooses (:func:`~opm_nlp.classify.decision.choose_rule`). Folds are stratified for every code
    at once (iterative stratification).

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
    sentence_recipe : {'one-pass', 'alone'}
        How sentences are embedded (:mod:`opm_nlp.classify.sentence_view`): pooled from the answer's
        own forward pass, or each run through the network again on its own.
    fine_tune : int
        Epochs of fine-tuning the embedding network itself on the coded answers, as a further view
        (:mod:`opm_nlp.classify.finetune`); 0 (the default) leaves it frozen. Needs PyTorch, and minutes of training.
    fine_tune_model : str, optional
        The network to fine-tune (an embedding model id or local folder); default the packaged
        all-MiniLM-L6-v2. Pass the same model as the embedder's.
    decision : {'auto', 'thresholds'}
        ``auto`` chooses the decision rule by cross-validation; ``thresholds``: per-code thresholds.
    cv : int
        Folds for out-of-fold scores (fewer for very small training sets).
    n_jobs : int, optional
        Processes fitting codes in parallel (default: up to 2).
    random_state : int
        Seed of the folds.

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_codes,)
        Per-code threshold maximising F1 out of fold (above 1 for a code that cannot be learned).
    decision_ : DecisionRule
        The rule ``predict`` applies (per-code ``thresholds_`` for models saved before rules existed).
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
    sentence_recipe_ : str
        The ``sentence_recipe`` used ('alone' for models saved before it existed, or embedders that cannot pool).

    Examples
    --------
    >>> clf = EmbeddingClassifier().fit(texts, Y)          # doctest: +SKIP
    >>> clf.predict_proba(["I will set goals"]).shape      # doctest: +SKIP
    (1, 12)
    """

    def __init__(self, embedder=None, C_lexical: float = 10.0, C_embedding: float = 3.0, char_ngrams: bool = True,
                 other_codes: bool = True, sentences: bool = True, sentence_recipe: str = "one-pass",
                 fine_tune: int = 0, fine_tune_model: str | None = None, decision: str = "auto", cv: int = 5,
                 n_jobs: int | None = None,
                 random_state: int = 0):
        self.embedder = embedder
        self.C_lexical = C_lexical
        self.C_embedding = C_embedding
        self.char_ngrams = char_ngrams
        self.other_codes = other_codes
        self.sentences = sentences
        self.sentence_recipe = sentence_recipe
        self.fine_tune = fine_tune
        self.fine_tune_model = fine_tune_model
        self.decision = decision
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
            self.__dict__.pop("_word_ngrams", None)  # remembered under the vocabulary being replaced
            self.vectorizers_ = ngram_vectorizers(len(texts), self.char_ngrams)
            if contexts is not None:
                from sklearn.preprocessing import OneHotEncoder

                self.context_encoder_ = OneHotEncoder(handle_unknown="ignore")
        # the character n-grams of the words seen, kept between calls (dropped when pickled)
        memo = None if fit else self.__dict__.setdefault("_word_ngrams", {})
        blocks = [v.fit_transform(texts) if fit else transform(v, texts, memo) for v in self.vectorizers_]
        if contexts is not None:
            column = np.asarray(contexts, dtype=object).reshape(-1, 1)
            encoder = self.context_encoder_
            blocks.append(encoder.fit_transform(column) if fit else encoder.transform(column))
        return sp.hstack(blocks, format="csr")

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
        self._check_params()
        texts = [str(x) for x in X]
        contexts = None if contexts is None else [str(c) for c in contexts]
        n_answers = len(texts)
        texts, Y, contexts = _with_examples(texts, Y, contexts, examples)
        texts, Y = _check_xy(texts, Y)
        self.n_positives_ = Y[:n_answers].sum(axis=0)
        self.n_examples_ = len(texts) - n_answers
        self._warn_few_examples(n_answers)
        folds = self._folds(Y)
        self.uses_context_ = contexts is not None
        X_lexical = self._lexical(texts, contexts, fit=True)
        self.sentence_view_, self.sentence_recipe_ = bool(self.sentences), fitted_recipe(self)
        X_embedding, sentences = embed_answers(self, texts, contexts, progress)
        fine_tuned = self._fine_tune(texts, Y, contexts, progress)
        learnable, oof_scores = self._fit_heads(X_lexical, X_embedding, Y, folds, fine_tuned, sentences, progress)
        self.thresholds_ = np.full(Y.shape[1], 1.01)
        for j in learnable:
            self.thresholds_[j] = best_threshold(Y[:, j], oof_scores[:, j])
        self.decision_ = (choose_rule(Y, oof_scores, n_answers, learnable, self.thresholds_, self.random_state)
                          if self.decision == "auto" else DecisionRule(self.thresholds_.copy()))
        self.oof_scores_ = oof_scores[:n_answers]
        self.n_codes_ = Y.shape[1]
        return self

    def _check_params(self) -> None:
        if not (isinstance(self.cv, int) and self.cv >= 2):
            raise DataError(f"The 'cv' parameter of EmbeddingClassifier must be an int >= 2. Got {self.cv!r} instead.")
        if self.decision not in ("auto", "thresholds"):
            raise DataError(f"The 'decision' parameter of EmbeddingClassifier must be 'auto' or 'thresholds'. "
                            f"Got {self.decision!r} instead.")
        if not (isinstance(self.fine_tune, int) and self.fine_tune >= 0):
            raise DataError(f"The 'fine_tune' parameter of EmbeddingClassifier must be an int >= 0 (epochs). "
                            f"Got {self.fine_tune!r} instead.")
        if self.sentence_recipe not in SENTENCE_RECIPES:
            raise DataError(f"The 'sentence_recipe' parameter of EmbeddingClassifier must be one of "
                            f"{list(SENTENCE_RECIPES)}. Got {self.sentence_recipe!r} instead.")
        for name in ("C_lexical", "C_embedding"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise DataError(f"The '{name}' parameter of EmbeddingClassifier must be a float > 0. "
                                f"Got {value!r} instead.")

    def _warn_few_examples(self, n_answers: int) -> None:
        """A :class:`FewExamplesWarning` for each code with few positive (or negative) coded answers."""
        for j in np.flatnonzero((self.n_positives_ < MIN_POSITIVES) | (n_answers - self.n_positives_ < MIN_POSITIVES)):
            warnings.warn(FewExamplesWarning(
                f"Code #{j} has {int(self.n_positives_[j])} positive answers of {n_answers}; its suggestions "
                f"will be unreliable. Code more answers with it.", int(j)), stacklevel=3)  # at fit's caller

    def _fit_heads(self, X_lexical, X_embedding, Y: np.ndarray, folds: np.ndarray, fine_tuned, sentences,
                   progress: bool) -> tuple[np.ndarray, np.ndarray]:
        """Fit the heads of the codes that can be learned (``prior_``, ``heads_``).

        Returns the columns of those codes, and the out-of-fold probabilities of all training answers
        (a code that cannot be learned scores its prior).
        """
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm

        n, k = Y.shape
        # a code needs two positives and two negatives to be learned at all; the others score their prior
        positives = Y.sum(axis=0)
        self.prior_ = (positives + 0.5) / (n + 1.0)
        learnable = np.flatnonzero((positives >= 2) & (n - positives >= 2))
        jobs = self.n_jobs if self.n_jobs is not None else min(2, len(learnable) or 1)
        # copy-on-write memmaps: liblinear needs writeable arrays, joblib shares large ones read-only
        fitted = Parallel(n_jobs=jobs, mmap_mode="c", return_as="generator")(
            delayed(fit_code)(X_lexical, X_embedding, Y[:, j], folds, self.C_lexical, self.C_embedding,
                              None if fine_tuned is None else fine_tuned[:, j], sentences)
            for j in learnable)
        results = list(tqdm(fitted, total=len(learnable), desc="learning codes", unit="code", disable=not progress))
        oof_scores = np.tile(self.prior_, (n, 1))
        self.heads_ = {}
        for j, (_, oof, head) in zip(learnable, results):
            oof_scores[:, j] = oof
            self.heads_[int(j)] = head
        if self.other_codes and k > 1:
            oof_scores = self._stack_other_codes(oof_scores, learnable, results, Y, folds)
        return learnable, oof_scores

    def _stack_other_codes(self, oof_scores: np.ndarray, learnable: np.ndarray, results: list, Y: np.ndarray,
                           folds: np.ndarray) -> np.ndarray:
        """Add to each head a second stacker that also sees how strongly the other codes apply: generic
        codes ("thanks, all good") are the ones left when nothing more specific is said. Returns the
        second stackers' out-of-fold probabilities."""
        others = others_probability(oof_scores)
        oof_scores = oof_scores.copy()
        for j, (views, _, head) in zip(learnable, results):
            oof_scores[:, j], second = stack(np.column_stack([views, others[:, j]]), Y[:, j], folds)
            self.heads_[int(j)] = (*head, second)
        return oof_scores

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
        if splits is None:
            n = Y.shape[0]
            splits = int(max(2, min(self.cv, n // 10 if n >= 20 else 2)))
        return stratified_folds(Y, splits, self.random_state)

    def predict_proba(self, X: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated probability of each code for each answer, shape (n_answers, n_codes).

        :func:`~opm_nlp.classify.evidence.predict_with_evidence` gives the same scores and, from the
        same pass, the sentence of each answer that carried each code.
        """
        return score_answers(self, X, contexts)[0]

    def predict(self, X: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """0/1 suggestions: the decision rule ``decision_`` applied to the probabilities."""
        scores = self.predict_proba(X, contexts)  # checks the estimator is fitted
        return suggest(rule_of(self), scores)[0].astype(np.int8)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("embedder_", None)  # the embedding model is recorded by id, never pickled
        state.pop("_word_ngrams", None)  # a cache of the character n-grams of words seen
        if state.get("embedder") is not None:
            state["embedder"] = None
        return state
