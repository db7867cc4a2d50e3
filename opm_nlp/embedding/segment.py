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
    """The shared pipeline: blank English, sentencizer, lookup lemmatizer (loaded once; :func:`words`)."""
    spacy = import_spacy()

    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.add_pipe("lemmatizer", config={"mode": "lookup"})
    pipeline.initialize()
    return pipeline


#: The ASCII characters spaCy's sentencizer ends a sentence at (its other ``punct_chars`` are not ASCII).
ASCII_SENTENCE_FINAL = "!.?"


def single_sentence(text: str) -> bool:
    """Whether spaCy's sentencizer is sure to keep ``text`` whole, known without running it.

    The sentencizer starts a sentence at a token that is not punctuation and follows a token that is
    one of its sentence-final characters. So an ASCII text with none of them but in the run of them
    and spaces it ends with is one sentence: a token after that run can only be made of spaces.

    Examples
    --------
    >>> single_sentence("Very caring staff!! "), single_sentence("Caring. Kind"), single_sentence("Café")
    (True, False, False)
    """
    core = text.rstrip().rstrip(ASCII_SENTENCE_FINAL)
    return core.isascii() and not any(final in core for final in ASCII_SENTENCE_FINAL)


@functools.lru_cache(maxsize=1)
def sentencizer() -> Language:
    """Blank English with the sentencizer: the tokenizer and the sentence-final characters that
    :func:`sentence_spans` needs (loaded once)."""
    spacy = import_spacy()

    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.initialize()
    return pipeline


def _stripped(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` narrowed to leave out the spaces around ``text[start:end]``; [] if only spaces."""
    part = text[start:end]
    stripped = part.strip()
    if not stripped:
        return []
    start += len(part) - len(part.lstrip())
    return [(start, start + len(stripped))]


def _sentence_bounds(tokens, finals: set[int]) -> list[tuple[int, int]]:
    """The ``(start_char, end_char)`` of each sentence of a tokenised text (a spaCy ``Doc``), by the rule
    of spaCy's ``Sentencizer.predict``: a sentence starts at a token that is not punctuation and follows a
    token whose text is one of the sentence-final characters (``finals``, their hashes), with no other
    such start between; read from the tokens' arrays instead of token objects (a test checks the two agree).
    """
    from spacy.attrs import IDX, IS_PUNCT, LENGTH, ORTH

    if not len(tokens):
        return []
    rows = tokens.to_array([IDX, LENGTH, ORTH, IS_PUNCT]).tolist()
    starts, seen_final = [0], False
    for i, (_, _, orth, punct) in enumerate(rows):
        if orth in finals:
            seen_final = True
        elif seen_final and not punct:
            starts.append(i)
            seen_final = False
    ends = starts[1:] + [len(rows)]
    return [(rows[a][0], rows[b - 1][0] + rows[b - 1][1]) for a, b in zip(starts, ends)]


def sentence_spans(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Where each sentence (segment) of each text lies: ``(start, end)`` character offsets into the text,
    spaces around each sentence left out; an empty text gives no sentences.

    Sentences are those of spaCy's sentencizer; a text that it is sure to keep whole
    (:func:`single_sentence`) is not run through spaCy. Offsets count Python characters (code points),
    whatever the emoji or accents.

    Examples
    --------
    >>> sentence_spans(["I will listen more. And set goals!"])
    [[(0, 19), (20, 34)]]
    """
    out = [_stripped(text, 0, len(text)) if single_sentence(text) else None for text in texts]
    rest = [row for row, spans in enumerate(out) if spans is None]
    if rest:
        pipeline = sentencizer()
        finals = {pipeline.vocab.strings.add(c) for c in pipeline.get_pipe("sentencizer").punct_chars}
        for row, tokens in zip(rest, pipeline.tokenizer.pipe((texts[row] for row in rest), batch_size=256)):
            out[row] = [span for start, end in _sentence_bounds(tokens, finals)
                        for span in _stripped(texts[row], start, end)]
    return out


def sentences(texts: Sequence[str]) -> list[list[str]]:
    """Split each text into its sentences (segments), those of :func:`sentence_spans`.

    Examples
    --------
    >>> sentences(["I will listen more. And set goals!"])
    [['I will listen more.', 'And set goals!']]
    """
    return [[text[start:end] for start, end in spans] for text, spans in zip(texts, sentence_spans(texts))]


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
