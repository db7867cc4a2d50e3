"""Example answers per theme: human-coded first, varied, each answer once, never a non-answer.

:func:`example_quotes` picks up to ``n`` answers per code. Answers a person coded come first (the most
specific to the theme first), then answers with only the model's suggestion, highest score first. A
non-answer (:func:`is_non_answer`: "None", "n/a", "-", fewer than :data:`MIN_QUOTE_WORDS` words) is
never picked; an answer serves one theme at most; and an answer whose words overlap too much
(:func:`jaccard`) with a quote already chosen is skipped, so a theme is illustrated by different
answers rather than near-copies of one. Each quote's ``highlight`` holds the part of it that carried
the code (:func:`quote_highlight`): the spans a person marked (``reviewed_spans``) for a person's
code, else the model's evidence (``evidence_spans``) for a suggestion.

Examples
--------
>>> from opm_nlp.report.quotes import example_quotes, is_non_answer, jaccard
>>> jaccard(frozenset({"set", "goals"}), frozenset({"set", "clear", "goals"}))
0.6666666666666666
>>> is_non_answer("None."), is_non_answer("Set goals with each mentee early on")
(True, False)
>>> example_quotes(tagged, codebook, "answer", "response_id", n=3, context=["wave"])   # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL, SCORE_PREFIX, human_coded_mask
from opm_nlp.io import tables as io_tables
from opm_nlp.io.formulas import spans_for_xlsx
from opm_nlp.io.spans import read_spans

#: Two example answers sharing more than this fraction of their words (Jaccard) are near-copies.
MAX_QUOTE_SIMILARITY = 0.5
#: An example answer has at least this many words: shorter ones ("IDP", "Listen!", "nothing yet", "Not
#: sure yet.") say too little to illustrate a theme in a paper.
MIN_QUOTE_WORDS = 4
#: Answers that say nothing, whatever their length (compared lower-case, without punctuation).
NON_ANSWERS = frozenset({
    "", "none", "n a", "na", "no", "nope", "nothing", "nil", "not applicable", "no comment", "no comments",
    "no answer", "don t know", "dont know", "i don t know", "idk", "not sure", "none at this time",
    "nothing at this time", "nothing at the moment", "none at the moment", "no changes at this time",
})
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared words over all words of two answers (0 when both are empty)."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def is_non_answer(text: str) -> bool:
    """True for an answer no paper would quote: empty, a stock non-answer, or under MIN_QUOTE_WORDS words."""
    plain = " ".join(re.findall(r"[a-z0-9]+", str(text).lower()))
    return plain in NON_ANSWERS or len(str(text).split()) < MIN_QUOTE_WORDS


def quote_highlight(row: pd.Series, text_col: str, code_id: str, human: bool) -> list[tuple[int, int]]:
    """The parts of a row's answer that carried ``code_id``, as ``(start, end)`` code points into the
    answer without the spaces around it (as quoted).

    A person's code: the spans marked in ``reviewed_spans``, if any (else none: the whole answer). A
    suggestion: its span in ``evidence_spans``. ``row`` is a row of a checked table
    (:func:`~opm_nlp.report.tables.prepare_table`, which refuses a spans cell that does not fit its answer).
    """
    column, nested = (REVIEWED_SPANS_COL, True) if human else (EVIDENCE_SPANS_COL, False)
    raw = row.get(text_col)
    if column not in row.index or not isinstance(raw, str):
        return []
    spans = read_spans(row[column], raw, nested=nested).get(code_id, [])
    lead, size = len(raw) - len(raw.lstrip()), len(raw.strip())
    spans = [spans] if not nested and spans else spans
    return [(max(0, s - lead), min(size, e - lead)) for s, e in spans if min(size, e - lead) > max(0, s - lead)]


def quotes_for_xlsx(quotes: pd.DataFrame, text_col: str) -> pd.DataFrame:
    """The quotes table (:func:`example_quotes`) as an XLSX sheet holds it: each ``highlight`` moved to its
    quote without the control characters XLSX cannot hold (:func:`opm_nlp.io.formulas.spans_for_xlsx`), so
    that it marks the same words."""
    if "highlight" not in quotes.columns or text_col not in quotes.columns:
        return quotes
    quotes = quotes.copy()
    quotes["highlight"] = [spans_for_xlsx(cell, text) for cell, text in zip(quotes["highlight"], quotes[text_col])]
    return quotes


def mark_spans(text: str, spans: Sequence[Sequence[int]], start: str, end: str) -> str:
    """``text`` with ``start`` and ``end`` around each of ``spans`` (merged where they overlap).

    Examples
    --------
    >>> mark_spans("Listen more. Set goals.", [[13, 23]], "[", "]")
    'Listen more. [Set goals.]'
    """
    out, at = [], 0
    for s, e in sorted((int(s), int(e)) for s, e in spans):
        if e <= at:
            continue
        s = max(s, at)
        out += [text[at:s], start, text[s:e], end]
        at = e
    return "".join(out) + text[at:]


def example_quotes(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, n: int = 3,
                   max_similarity: float = MAX_QUOTE_SIMILARITY, context: Sequence[str] = ()) -> pd.DataFrame:
    """Up to ``n`` example answers per code: human-coded first, varied, each answer once.

    Candidates are the answered respondents with the code whose answer is not a non-answer
    (:func:`is_non_answer`). Answers a person coded come first: those carrying fewer codes first (the
    most specific to the theme), and among those, answers of 8 to 40 words (a sentence or two, not a
    fragment or an essay). Answers with only the model's suggestion follow, highest ``score_<code>``
    first; ``coded_by`` says which is which. Candidates are taken greedily, skipping an answer already
    quoted for another theme and any answer whose word-set Jaccard similarity to a quote already chosen
    for the code exceeds ``max_similarity``; codes with the fewest candidates choose first, so a rare
    theme keeps its few answers. A code gets fewer than ``n`` quotes when its answers run out.

    Parameters
    ----------
    context : sequence of str
        Columns shown beside each quote (the wave, the ``--by`` columns), as text.

    Returns
    -------
    DataFrame
        Columns: code, label, rank, ``id_col``, ``text_col``, the ``context`` columns, score (NaN without
        scores), coded_by ("person" or "model"), max_similarity (to the quotes chosen before it for the
        code), highlight (JSON ``[[start, end], ...]``, code points into the quote: the part that carried
        the code, :func:`quote_highlight`; ``"[]"`` when none is known). Rows in codebook order, then rank.
    """
    answered = io_tables.answered(table[text_col])
    human = human_coded_mask(table)
    n_codes = table[codebook.ids].to_numpy(dtype=int).sum(axis=1)
    texts = io_tables.text_values(table[text_col]).to_numpy()
    quotable = answered & ~np.array([is_non_answer(text) for text in texts], dtype=bool)
    n_words = np.array([len(text.split()) for text in texts])
    context = [c for c in dict.fromkeys(context) if c not in (id_col, text_col)]
    columns = ["code", "label", "rank", id_col, text_col, *context, "score", "coded_by", "max_similarity", "highlight"]
    context_values = {c: io_tables.text_values(table[c]).to_numpy() for c in context}
    candidates = {code_id: np.flatnonzero((table[code_id].to_numpy(dtype=int) == 1) & quotable)
                  for code_id in codebook.ids}
    used: set[int] = set()
    rows = []
    for code_id in sorted(codebook.ids, key=lambda c: len(candidates[c])):  # stable: codebook order on ties
        score_col = SCORE_PREFIX + code_id
        scores = table[score_col].to_numpy(float) if score_col in table.columns else np.full(len(table), np.nan)
        order = sorted(candidates[code_id], key=lambda i: (
            (0, n_codes[i], not 8 <= n_words[i] <= 40, 0.0, i) if human[i]
            else (1, 0, False, -np.nan_to_num(scores[i], nan=-np.inf), i)))
        chosen: list[frozenset[str]] = []
        for i in order:
            if len(chosen) >= n:
                break
            if i in used:
                continue
            words = _words(texts[i])
            similarity = max((jaccard(words, other) for other in chosen), default=0.0)
            if similarity > max_similarity:
                continue
            chosen.append(words)
            used.add(i)
            rows.append({"code": code_id, "label": codebook[code_id].label, "rank": len(chosen),
                         id_col: table[id_col].iloc[i], text_col: texts[i],
                         **{c: values[i] for c, values in context_values.items()},
                         "score": scores[i], "coded_by": "person" if human[i] else "model",
                         "max_similarity": similarity,
                         "highlight": json.dumps(quote_highlight(table.iloc[i], text_col, code_id, human[i]))})
    frame = pd.DataFrame(rows, columns=columns)
    position = {code_id: k for k, code_id in enumerate(codebook.ids)}
    frame = frame.sort_values(["code", "rank"], key=lambda s: s.map(position) if s.name == "code" else s,
                              kind="stable")
    return frame.reset_index(drop=True)
