"""The embeddings the embedding classifier reads: each answer's and, for its sentence view, each sentence's.

An answer of two or more sentences is also scored sentence by sentence (``EmbeddingClassifier(sentences=True)``).
Its sentences are embedded by one of two recipes (:data:`~opm_nlp.embedding.onepass.SENTENCE_RECIPES`),
recorded in the fitted classifier as ``sentence_recipe_``:

- ``"alone"``: each sentence goes through the network on its own (with the context, if any, before it),
  a second forward pass after the answer's. Models saved before the recipe was recorded use it.
- ``"one-pass"``: each sentence's vector is pooled from the answer's own token outputs, one forward
  pass per answer (:mod:`opm_nlp.embedding.onepass`). Needs an embedder that can
  (:meth:`~opm_nlp.embedding.encoder.Embedder.encode_segments`, a mean-pooling model); with any other
  the classifier is fitted with ``"alone"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from opm_nlp.embedding.onepass import shift_spans

#: One sentence recipe's embeddings: the answers' (n_answers, dim), and the sentences' (S, owner) or None.
Embedded = tuple[np.ndarray, "tuple[np.ndarray, np.ndarray] | None"]


def fitted_recipe(classifier) -> str:
    """The recipe a classifier being fitted uses: its ``sentence_recipe``, if its embedder can."""
    embedder = classifier._embedder()
    if classifier.sentence_recipe == "one-pass" and getattr(embedder, "pools_segments", False):
        return "one-pass"
    return "alone"


@contextlib.contextmanager
def _progress(embedder, label: str | None) -> Iterator[None]:
    showing = getattr(embedder, "show_progress", None)
    if label and showing is not None:  # an Embedder; other embedders show nothing
        embedder.show_progress = label
    try:
        yield
    finally:
        if label and showing is not None:
            embedder.show_progress = showing


def embed_answers(classifier, texts: list[str], contexts: list[str] | None, progress: bool = False,
                  spans: list[list[tuple[int, int]]] | None = None) -> Embedded:
    """The answers' embeddings and, with the sentence view, ``(S, owner)``: the embeddings of the
    sentences of the answers that have two or more, and the row of the answer each belongs to (see
    :func:`~opm_nlp.classify.stacking.best_sentence`); by the classifier's ``sentence_recipe_``.

    ``spans`` are the texts' sentences (:func:`~opm_nlp.embedding.segment.sentence_spans`), if the
    caller has them already.
    """
    if not getattr(classifier, "sentence_view_", False):
        return classifier._embedding(texts, contexts, progress="embedding answers" if progress else None), None
    if spans is None:
        from opm_nlp.embedding.segment import sentence_spans

        spans = sentence_spans(texts)
    if getattr(classifier, "sentence_recipe_", "alone") == "alone":
        X = classifier._embedding(texts, contexts, progress="embedding answers" if progress else None)
        return X, _sentences_alone(classifier, texts, spans, contexts, "embedding sentences" if progress else None)
    spans = [s if len(s) > 1 else [] for s in spans]
    moved = [shift_spans(s, None if contexts is None else contexts[row], texts[row]) for row, s in enumerate(spans)]
    embedder = classifier._embedder()
    with _progress(embedder, "embedding answers" if progress else None):
        X, per_answer = embedder.encode_segments(classifier._with_context(texts, contexts), moved)
    owner = np.asarray([row for row, s in enumerate(spans) for _ in s], dtype=np.int64)
    if not len(owner):
        return np.asarray(X, dtype=np.float64), (np.zeros((0, 1)), owner)
    S = np.concatenate([v for v in per_answer if len(v)])
    return np.asarray(X, dtype=np.float64), (np.asarray(S, dtype=np.float64), owner)


def _sentences_alone(classifier, texts: list[str], spans: list[list[tuple[int, int]]], contexts,
                     progress: str | None):
    """``(S, owner)`` by the ``"alone"`` recipe: each sentence embedded on its own."""
    pieces, owner = [], []
    for row, text in enumerate(texts):
        if len(spans[row]) > 1:
            pieces += [text[start:end] for start, end in spans[row]]
            owner += [row] * len(spans[row])
    owner = np.asarray(owner, dtype=np.int64)
    if not pieces:
        return np.zeros((0, 1)), owner
    context = None if contexts is None else [contexts[row] for row in owner]
    return classifier._embedding(pieces, context, progress=progress), owner
