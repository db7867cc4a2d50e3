"""How the embedding classifier reads an answer's wording: TF-IDF word and character n-grams.

:func:`ngram_vectorizers` gives the vectorizers to fit on the training answers: word 1-2-grams and,
unless left out, character 2-5-grams within words (robust to typos and word forms). :func:`transform`
applies a fitted one to new answers; for character n-grams it gives scikit-learn's matrix faster, by
splitting each distinct word into n-grams once, so that tagging many answers is not held up by it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

#: Words whose character n-grams :func:`transform` remembers at most; beyond, it forgets them all.
MAX_WORDS = 500_000


def ngram_vectorizers(n_texts: int, char_ngrams: bool = True) -> list[TfidfVectorizer]:
    """Unfitted vectorizers for ``n_texts`` training answers: word 1-2-grams, and character 2-5-grams.

    From 200 answers on, an n-gram must occur in two answers to be kept.
    """
    min_df = 2 if n_texts >= 200 else 1
    vectorizers = [TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, strip_accents="unicode")]
    if char_ngrams:
        vectorizers.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=min_df,
                                           sublinear_tf=True, max_features=100_000))
    return vectorizers


def transform(vectorizer: TfidfVectorizer, texts: list[str], memo: dict[str, list[int]]):
    """``vectorizer.transform(texts)``; for character n-grams within words, the same matrix faster.

    Character n-grams never cross a word boundary, so an answer's n-grams are those of its words
    in turn: each distinct word is split and looked up in the vocabulary once, not in every answer.
    ``memo`` keeps each word's n-grams for the next call (at most :data:`MAX_WORDS` words): pass the
    same dict for the same fitted vectorizer only.
    """
    tfidf = getattr(vectorizer, "_tfidf", None)
    if vectorizer.analyzer != "char_wb" or vectorizer.binary or tfidf is None:
        return vectorizer.transform(texts)
    if len(memo) > MAX_WORDS:  # bounded, so memory stays flat however many answers are tagged
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
