"""Scores of answers and, from the same pass, the part of each answer that carried each code (its evidence).

An embedding classifier with a sentence view (``sentence_view_``) scores every sentence of an answer of
two or more sentences with each code's embedding regression (:func:`~opm_nlp.classify.stacking.best_sentence`);
the sentence it rates highest is that code's evidence. :func:`score_answers` computes the scores and
those sentences together, from one pass of the encoder. An answer of one sentence, a code without a
regression, or a classifier without a sentence view gives the whole answer (spaces around it left out);
the keyword classifier gives the first sentence that holds one of the code's keywords.

Spans are ``(start, end)`` offsets in code points (Python ``str`` indices) into each text as given,
the segments of :func:`~opm_nlp.embedding.segment.sentence_spans`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.utils.validation import check_is_fitted

from opm_nlp.classify.rowwise import linear_scores, probability
from opm_nlp.classify.sentence_view import embed_answers
from opm_nlp.classify.stacking import best_sentence, others_probability
from opm_nlp.exceptions import DataError


def sentence_argmax(sentence_scores: np.ndarray, owner: np.ndarray, n_answers: int) -> np.ndarray:
    """For each answer, the place among its sentences of the one scoring highest (the first, on a tie);
    -1 for an answer with no sentences scored (one of a single sentence).

    ``owner`` is the answer (row) of each sentence, in order, as :func:`embed_answers` gives it.

    Examples
    --------
    >>> sentence_argmax(np.array([0.1, 0.7, 0.3, 2.0, 2.0]), np.array([0, 0, 0, 2, 2]), 3).tolist()
    [1, -1, 0]
    """
    out = np.full(n_answers, -1, dtype=np.int64)
    if not len(owner):
        return out
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    group = np.cumsum(np.r_[True, owner[1:] != owner[:-1]]) - 1
    local = np.arange(len(owner)) - starts[group]
    top = np.maximum.reduceat(sentence_scores, starts)
    first = np.minimum.reduceat(np.where(sentence_scores == top[group], local, len(owner)), starts)
    out[owner[starts]] = first
    return out


def score_answers(classifier, X: Sequence[str], contexts: Sequence[str] | None = None,
                  evidence: bool = False, spans: list[list[tuple[int, int]]] | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """An :class:`~opm_nlp.classify.estimator.EmbeddingClassifier`'s calibrated scores, shape
    (n_answers, n_codes), and with ``evidence`` the place of each answer's best sentence for each code
    (same shape, -1 for the whole answer; see :func:`sentence_argmax`), else None.

    The scores are those of ``predict_proba``, whatever ``evidence``: the sentences' scores are the
    sentence view's own. ``spans`` are the answers' sentences (:func:`~opm_nlp.embedding.segment.sentence_spans`),
    if the caller has them already.
    """
    check_is_fitted(classifier, "heads_")
    texts = [str(x) for x in X]
    if classifier.uses_context_ and contexts is None:
        raise DataError("This model was trained with a context column (e.g. the survey question); "
                        "pass the same column when tagging.")
    contexts = [str(c) for c in contexts] if (classifier.uses_context_ and contexts is not None) else None
    out = np.tile(classifier.prior_, (len(texts), 1))
    best = np.full(out.shape, -1, dtype=np.int64) if evidence else None
    if not texts or not classifier.heads_:
        return out, best
    X_lexical = classifier._lexical(texts, contexts, fit=False)
    X_embedding, sentences = embed_answers(classifier, texts, contexts, spans=spans)
    fine_tuned = getattr(classifier, "fine_tuned_", None)  # None also for models saved before fine-tuning
    if fine_tuned is not None:
        embedder = classifier._embedder()  # the fine-tuned network runs as the embedding model does
        fine_tuned = fine_tuned.decision_function(
            classifier._with_context(texts, contexts),
            backend="torch" if getattr(embedder, "backend", None) == "torch" else "onnx",
            cache=getattr(embedder, "cache", True))
    views = {}
    for j, (lexical, embedding, stacker, *_) in classifier.heads_.items():
        scores = linear_scores(embedding, X_embedding)  # row by row: an answer's score, whatever the batch
        per_sentence = None if sentences is None else linear_scores(embedding, sentences[0])
        views[j] = np.column_stack([linear_scores(lexical, X_lexical), scores]
                                   + ([] if sentences is None else
                                      [best_sentence(embedding, scores, *sentences, sentence_scores=per_sentence)])
                                   + ([] if fine_tuned is None else [fine_tuned[:, j]]))
        out[:, j] = probability(stacker, views[j])
        if evidence and sentences is not None and len(sentences[1]):
            best[:, j] = sentence_argmax(per_sentence, sentences[1], len(texts))
    others = others_probability(out)
    for j, (*_, second) in ((j, head) for j, head in classifier.heads_.items() if len(head) == 4):
        out[:, j] = probability(second, np.column_stack([views[j], others[:, j]]))
    return out, best


def _whole(text: str) -> tuple[int, int]:
    """The span of ``text`` without the spaces around it."""
    start = len(text) - len(text.lstrip())
    return start, max(start, len(text.rstrip()))


def _keyword_sentences(classifier, texts: list[str], spans: list[list[tuple[int, int]]]) -> np.ndarray:
    """For a :class:`~opm_nlp.classify.keyword.KeywordClassifier`: the place of each answer's first
    sentence holding one of each code's keywords; -1 for an answer of one sentence, or none such."""
    from opm_nlp.embedding.segment import words

    best = np.full((len(texts), classifier.n_codes_), -1, dtype=np.int64)
    rows = [row for row, s in enumerate(spans) if len(s) > 1]
    pieces = [texts[row][start:end] for row in rows for start, end in spans[row]]
    tokens = iter(words(pieces))
    for row in rows:
        per_sentence = [next(tokens) for _ in spans[row]]
        for j, queries in enumerate(classifier.queries_):
            for place, sentence in enumerate(per_sentence):
                if any(classifier._matches(sentence, stems) for stems in queries):
                    best[row, j] = place
                    break
    return best


def predict_with_evidence(classifier, X: Sequence[str], contexts: Sequence[str] | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's scores (n_answers, n_codes) and each code's evidence span (n_answers, n_codes, 2).

    The scores are the classifier's ``predict_proba``; each span ``(start, end)`` indexes the answer as
    given (see the module docstring). Works for the embedding classifier (its best sentence), the
    keyword classifier (the first sentence with a keyword) and any other with ``predict_proba`` (the
    whole answer).

    Examples
    --------
    >>> scores, spans = predict_with_evidence(clf, ["Nothing. I will set goals!"])  # doctest: +SKIP
    >>> spans[0, 3].tolist()                                                       # doctest: +SKIP
    [9, 26]
    """
    from opm_nlp.classify.keyword import KeywordClassifier
    from opm_nlp.embedding.segment import sentence_spans

    texts = [str(x) for x in X]
    # split once: the sentence view embeds the sentences whose spans are the evidence
    sentence_view = hasattr(classifier, "heads_") and getattr(classifier, "sentence_view_", False)
    spans = sentence_spans(texts) if sentence_view or isinstance(classifier, KeywordClassifier) else None
    if hasattr(classifier, "heads_"):  # an EmbeddingClassifier (which imports this module)
        scores, best = score_answers(classifier, texts, contexts, evidence=True, spans=spans)
    else:
        scores = classifier.predict_proba(texts) if contexts is None else classifier.predict_proba(texts, contexts)
        best = np.full(scores.shape, -1, dtype=np.int64)
    if isinstance(classifier, KeywordClassifier):
        best = _keyword_sentences(classifier, texts, spans)
    out = np.zeros((*scores.shape, 2), dtype=np.int64)
    for row, text in enumerate(texts):
        out[row, :] = _whole(text)
        for j in np.flatnonzero(best[row] >= 0):
            out[row, j] = spans[row][best[row, j]]
    return scores, out
