"""Sentence vectors from the answer's own forward pass: the one-pass sentence recipe.

An answer of several sentences is scored sentence by sentence as well (the classifier's sentence view).
The ``"alone"`` recipe runs each sentence through the network a second time, on its own. The
``"one-pass"`` recipe runs the answer once and pools each sentence's vector from the answer's token
outputs: the mean of the token states whose character offsets start inside the sentence's span
(:func:`span_mask`; the answer's special tokens left out), L2-normalised, per layer, as the answer's
own vector is pooled (:func:`opm_nlp.embedding.runner.pool_spans`). The sentence is then read in the
light of its answer, and tagging costs one forward pass per answer.

A sentence none of whose tokens reach the network (past the model's maximum length) has no tokens to
pool: its vector is the sentence embedded alone (:meth:`~opm_nlp.embedding.encoder.Embedder.encode_segments`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How the sentences of an answer of several sentences are embedded (recorded in each model folder;
#: folders that do not record it use ``"alone"``).
SENTENCE_RECIPES = ("alone", "one-pass")


def span_mask(offsets: Sequence[tuple[int, int]], special: Sequence[int], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Which tokens each span pools, shape (len(spans), tokens), 0/1 float32.

    A token belongs to the span its first character falls in; special tokens ([CLS], [SEP]) and
    tokens that cover no character belong to none.
    """
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = (np.asarray(special, dtype=bool) == 0) & (offsets[:, 1] > offsets[:, 0])
    mask = np.zeros((len(spans), len(offsets)), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        mask[row] = real & (offsets[:, 0] >= start) & (offsets[:, 0] < end)
    return mask


def shift_spans(spans: Sequence[tuple[int, int]], context: str | None, text: str) -> list[tuple[int, int]]:
    """``spans`` of ``text``, moved to where ``text`` lies in what the classifier embeds for it:
    ``f"{context} {text}".strip()`` (just ``text`` without a context)."""
    if context is None:
        return list(spans)
    joined = f"{context} {text}"
    shift = len(context) + 1 - (len(joined) - len(joined.lstrip()))
    return [(start + shift, end + shift) for start, end in spans]
