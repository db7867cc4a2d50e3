"""Sentence splitting (opm_nlp.embedding.segment): the sentences are spaCy's sentencizer's, whether or not
a text goes through spaCy.

:func:`sentence_spans` keeps a text whole without running spaCy when :func:`single_sentence` says the
sentencizer would; here every text is also run through spaCy's pipeline, and the spans must be the same.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opm_nlp.embedding.segment import (ASCII_SENTENCE_FINAL, import_spacy, sentence_spans, sentences,
                                       sentencizer, single_sentence)

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def reference():
    """Blank English and the sentencizer, a pipeline of its own."""
    pipeline = import_spacy().blank("en")
    pipeline.add_pipe("sentencizer")
    return pipeline


def spacy_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """Every text through spaCy's sentencizer, spaces around each sentence left out."""
    out = []
    for doc in reference().pipe(texts):
        spans = []
        for sentence in doc.sents:
            part = doc.text[sentence.start_char:sentence.end_char]
            if part.strip():
                start = sentence.start_char + len(part) - len(part.lstrip())
                spans.append((start, start + len(part.strip())))
        out.append(spans)
    return out


def test_the_ascii_sentence_final_characters_are_the_sentencizers():
    from spacy.pipeline.sentencizer import Sentencizer

    assert {c for c in Sentencizer.default_punct_chars if c.isascii()} == set(ASCII_SENTENCE_FINAL)
    assert sentencizer().get_pipe("sentencizer").punct_chars == set(Sentencizer.default_punct_chars)


@pytest.mark.parametrize("text", [
    "", "   ", "\n", "x", "No stop at all", "Ends with a stop.", "Two stops at the end?!  ", "Stop then spaces.\n\n",
    "  Spaces around.  ", "Tab\tand\x1cfile separator.\x1f", "Lines\n\nwithout a stop", "Fine. ",
    "Stop and a no-break space!.\u00a0",
])
def test_texts_that_stay_whole_without_spacy(text):
    assert single_sentence(text)
    assert sentence_spans([text]) == spacy_spans([text])


@pytest.mark.parametrize("text", [
    "!Hello there", "Hello.  !", "Hello. !", "What? Yes.", "3.5 stars", "e.g. this", "Mr. Smith came",
    "Café", "\u3002text\u3002", "Good . Very good", ". .",
])
def test_texts_that_go_through_spacy_split_as_spacy_does(text):
    assert not single_sentence(text)
    assert sentence_spans([text]) == spacy_spans([text])


# Texts made mostly of what decides a split: sentence-final characters, other punctuation, every kind of
# space, letters, digits, and a few non-ASCII characters (one of them sentence-final)
PIECES = st.sampled_from(list("!.?,;:'\"()-…") + [" ", "  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f",
                         "\x85", "\u00a0", "\u2009", "\u3000", "\u3002", "é", "😀", "Mr.", "e.g.", "etc.", "U.S.",
                         ":)", "3.5", "www.nhs.uk"])
WORDS = st.text(alphabet="abcXYZ019", min_size=1, max_size=6)
SPACES = st.sampled_from([" ", "  ", "\n", "\t", "\x1c", "\u00a0", "\u3000", ""])
TEXTS = st.lists(st.one_of(PIECES, WORDS), max_size=12).map("".join)
# ...and texts that end in a run of sentence-final characters and spaces, which mostly skip spaCy
ENDINGS = st.tuples(st.lists(st.one_of(WORDS, SPACES, st.sampled_from(list(",;:'\"()-"))), max_size=8),
                    st.text(alphabet=ASCII_SENTENCE_FINAL + "…\u3002", max_size=3), st.lists(SPACES, max_size=3)
                    ).map(lambda parts: "".join(parts[0]) + parts[1] + "".join(parts[2]))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(TEXTS, ENDINGS), min_size=1, max_size=8))
def test_generated_texts_split_as_spacy_splits_them(texts):
    assert sentence_spans(texts) == spacy_spans(texts)


def test_every_example_answer_splits_as_spacy_splits_it():
    texts = sorted({str(t) for path in (ROOT / "examples").glob("*.csv")
                    for t in pd.read_csv(path, dtype=str, keep_default_na=False).get("answer", [])})
    assert len(texts) > 400
    assert sentence_spans(texts) == spacy_spans(texts)
    assert sum(map(single_sentence, texts)) > 0  # some of them skip spaCy


def test_sentences_are_the_text_of_the_spans():
    texts = ["  I will listen more.  And set goals!\n", "One sentence", "", "Café. Très bien."]
    assert sentences(texts) == [["I will listen more.", "And set goals!"], ["One sentence"], [],
                                ["Café.", "Très bien."]]
