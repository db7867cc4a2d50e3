"""Example answers per theme: the most confident ones, kept varied.

:func:`example_quotes` picks up to ``n`` answers per code, most confident first, and skips an answer
whose words overlap too much (:func:`jaccard`) with a quote already chosen, so a theme is illustrated
by different answers rather than near-copies of one.

Examples
--------
>>> from opm_nlp.report.quotes import example_quotes, jaccard
>>> jaccard(frozenset({"set", "goals"}), frozenset({"set", "clear", "goals"}))
0.6666666666666666
>>> example_quotes(tagged, codebook, "answer", "response_id", n=3)                 # doctest: +SKIP
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import SCORE_PREFIX, human_coded_mask
from opm_nlp.io import tables as io_tables

#: Two example answers sharing more than this fraction of their words (Jaccard) are near-copies.
MAX_QUOTE_SIMILARITY = 0.5
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared words over all words of two answers (0 when both are empty)."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def example_quotes(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, n: int = 3,
                   max_similarity: float = MAX_QUOTE_SIMILARITY) -> pd.DataFrame:
    """Up to ``n`` example answers per code: confident and varied.

    Candidates are the answered respondents with the code, most confident first: by ``score_<code>``
    when the table has scores; otherwise (people's codes are all equally sure) answers carrying fewer
    codes first (the most specific to the theme), and among those, answers of 8 to 40 words (a sentence
    or two, not a fragment or an essay). They are taken greedily, skipping any answer whose word-set Jaccard similarity to a quote
    already chosen exceeds ``max_similarity``, so a code gets varied quotes, not near-copies (and
    fewer than ``n`` when its answers are all alike).

    Returns
    -------
    DataFrame
        Columns: code, label, rank, ``id_col``, ``text_col``, score (NaN without scores), coded_by
        ("person" or "model"), max_similarity (to the quotes chosen before it).
    """
    answered = io_tables.answered(table[text_col])
    human = human_coded_mask(table)
    n_codes = table[codebook.ids].to_numpy(dtype=int).sum(axis=1)
    texts = io_tables.text_values(table[text_col]).to_numpy()
    n_words = np.array([len(text.split()) for text in texts])
    columns = ["code", "label", "rank", id_col, text_col, "score", "coded_by", "max_similarity"]
    rows = []
    for code_id in codebook.ids:
        candidates = np.flatnonzero((table[code_id].to_numpy(dtype=int) == 1) & answered)
        score_col = SCORE_PREFIX + code_id
        scores = table[score_col].to_numpy(float) if score_col in table.columns else np.full(len(table), np.nan)
        if score_col in table.columns:
            order = sorted(candidates, key=lambda i: (-np.nan_to_num(scores[i], nan=-np.inf), i))
        else:
            order = sorted(candidates, key=lambda i: (n_codes[i], not 8 <= n_words[i] <= 40, i))
        chosen: list[frozenset[str]] = []
        for i in order:
            if len(chosen) >= n:
                break
            words = _words(texts[i])
            similarity = max((jaccard(words, other) for other in chosen), default=0.0)
            if similarity > max_similarity:
                continue
            chosen.append(words)
            rows.append({"code": code_id, "label": codebook[code_id].label, "rank": len(chosen),
                         id_col: table[id_col].iloc[i], text_col: texts[i], "score": scores[i],
                         "coded_by": "person" if human[i] else "model", "max_similarity": similarity})
    return pd.DataFrame(rows, columns=columns)
