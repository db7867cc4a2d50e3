"""Segmenting answers into sentences and words, with spaCy's blank English pipeline.

spaCy's trained pipelines are not needed: the rule-based sentencizer and the lookup lemmatizer
(from ``spacy-lookups-data``) are enough for sentence splitting and stem/lemma matching, and fast.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language


@functools.lru_cache(maxsize=1)
def nlp() -> Language:
    """The shared pipeline: blank English, sentencizer, lookup lemmatizer (loaded once)."""
    import spacy

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
