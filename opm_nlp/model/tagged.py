"""The tagged table: the columns tagging writes for each answer, from its scores and its evidence.

:func:`tagged_table` turns a model's scores and evidence spans (:func:`~opm_nlp.classify.evidence.predict_with_evidence`)
into the output of :meth:`~opm_nlp.model.coding_model.CodingModel.tag`; :func:`evidence_cells` writes
the ``evidence`` and ``evidence_spans`` columns (:mod:`opm_nlp.columns`), with offsets into the answer as
the output holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule, suggest
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import (EVIDENCE_COL, EVIDENCE_SPANS_COL, NEEDS_REVIEW_COL, SCORE_PREFIX, SUGGESTED_COL,
                             UNCERTAIN_COL, output_columns)
from opm_nlp.exceptions import DataError
from opm_nlp.io.spans import format_spans

logger = logging.getLogger(__name__)


def resolve_carry(columns, text_col: str, id_col: str, carry: list[str] | None, codebook: Codebook) -> list[str]:
    """Columns to copy into a tagged table: ``carry``, checked, or every column the output does not add."""
    added = set(output_columns(codebook))
    if carry is None:
        clashes = [c for c in columns if c in added]
        if clashes:
            logger.warning("columns %s are replaced by the model's output", clashes)
        return [c for c in columns if c not in (id_col, text_col) and c not in added]
    unknown = [c for c in carry if c not in columns]
    if unknown:
        raise DataError(f"Column(s) {unknown} to carry not found. Columns: {list(columns)}.")
    return list(carry)


def evidence_cells(written: Sequence, spans: np.ndarray, suggested: np.ndarray,
                   ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``evidence`` and ``evidence_spans`` cells of each answer.

    Parameters
    ----------
    written : sequence
        Each answer as the output holds it (its text column, spaces around it kept).
    spans : ndarray of shape (n_answers, n_codes, 2)
        Each code's evidence, offsets into the answer with the spaces around it left out (what the
        model scored).
    suggested : ndarray of shape (n_answers, n_codes)
        Whether each code is suggested: only those get evidence, in codebook order.
    ids : sequence of str
        The code ids.
    """
    readable, programs = [], []
    for row, value in enumerate(written):
        codes = np.flatnonzero(suggested[row])
        if not len(codes):
            readable.append("")
            programs.append("")
            continue
        text = str(value)
        shift = len(text) - len(text.lstrip())  # the model read the answer without its leading spaces
        found = {ids[j]: (int(spans[row, j, 0]) + shift, int(spans[row, j, 1]) + shift) for j in codes}
        readable.append("; ".join(f'{code}: "{" ".join(text[s:e].split())}"' for code, (s, e) in found.items()))
        programs.append(format_spans(found))
    return readable, programs


def tagged_table(frame: pd.DataFrame, text_col: str, id_col: str, carry: list[str], scores: np.ndarray,
                 spans: np.ndarray, has_text: np.ndarray, decision: DecisionRule, ids: Sequence[str],
                 margin: float) -> pd.DataFrame:
    """The tagged table of ``frame`` (see :meth:`~opm_nlp.model.coding_model.CodingModel.tag`)."""
    suggested, distance = suggest(decision, scores)
    suggested &= has_text[:, None]
    near = distance < margin  # a change of the score smaller than the margin would flip the decision
    out = frame[[id_col, text_col, *carry]].reset_index(drop=True).copy()
    for j, code_id in enumerate(ids):
        out[code_id] = suggested[:, j].astype(int)
    for j, code_id in enumerate(ids):
        out[SCORE_PREFIX + code_id] = np.round(scores[:, j], 4)
    out[SUGGESTED_COL] = ["; ".join(ids[j] for j in np.flatnonzero(row)) for row in suggested]
    out[UNCERTAIN_COL] = ["; ".join(ids[j] for j in np.flatnonzero(row)) for row in near]
    out[NEEDS_REVIEW_COL] = (near.any(axis=1) | ~has_text).astype(int)
    out[EVIDENCE_COL], out[EVIDENCE_SPANS_COL] = evidence_cells(out[text_col].tolist(), spans, suggested, ids)
    return out
