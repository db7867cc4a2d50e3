"""Segmenting answers into sentences and words, with spaCy's blank English pipeline.

spaCy's trained pipelines are not needed: the rule-based sentencizer and the lookup lemmatizer
(from ``spacy-lookups-data``) are enough for sentence splitting and stem/lemma matching, and fast.
spaCy is imported without PyTorch (:func:`import_spacy`): the onnx backends tag without it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language


def import_spacy():
    """``import spacy``, without importing PyTorch when it is not loaded yet.

    spaCy's thinc imports torch if it is installed (~1.5 s and ~300 MB), for neural pipelines that
    sentence splitting and lookups never use; meanwhile ``import torch`` is made to fail, so thinc
    takes torch as absent. torch imports normally afterwards.
    """
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # "import torch" raises ImportError
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


@functools.lru_cache(maxsize=1)
def nlp() -> Language:
    """The shared pipeline: blank English, sentencizer, lookup lemmatizer (loaded once)."""
    spacy = import_spacy()

    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.add_pipe("lemmatizer", config={"mode": "lookup"})
    pipeline.initialize()
    return pipeline


def sentences(texts: Sequence[str]) -> list[list[str]]:
    """Split each text into its sentences (segments); an empty text gives no segments.

    Examples
    --------
    >>> sentences(["I will listen more. And set goals!"])
    [['I will listen more.', 'And set goals!']]
    """
    pipeline = nlp()
    out = []
    for doc in pipeline.pipe(texts, disable=["lemmatizer"], batch_size=256):
        out.append([s.text.strip() for s in doc.sents if s.text.strip()])
    return out


def sentence_spans(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Where each sentence (segment) of each text lies: ``(start, end)`` character offsets into the text,
    so that ``text[start:end]`` is the sentence of :func:`sentences`, spaces around it left out.

    Offsets count Python characters (code points), whatever the emoji or accents.

    Examples
    --------
    >>> sentence_spans(["I will listen more. And set goals!"])
    [[(0, 19), (20, 34)]]
    """
    pipeline = nlp()
    out = []
    for doc in pipeline.pipe(texts, disable=["lemmatizer"], batch_size=256):
        spans = []
        for sentence in doc.sents:
            start, end = sentence.start_char, sentence.end_char
            text = doc.text[start:end]
            stripped = text.strip()
            if stripped:
                start += len(text) - len(text.lstrip())
                spans.append((start, start + len(stripped)))
        out.append(spans)
    return out


def words(texts: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Lower-cased (word, lemma) pairs of each text, punctuation and spaces left out.

    Examples
    --------
    >>> words(["Revisiting expectations!"])
    [[('revisiting', 'revisit'), ('expectations', 'expectation')]]
    """
    pipeline = nlp()
    out = []
    for doc in pipeline.pipe((t.lower() for t in texts), disable=["sentencizer"], batch_size=256):
        out.append([(t.text, t.lemma_ or t.text) for t in doc if not (t.is_punct or t.is_space)])
    return out
