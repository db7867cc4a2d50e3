"""The columns of the tables opm-nlp writes, and who coded what in them.

Tables move through the pipeline in one wide format. A *coded* table (from people) has no
``score_<code>`` columns; a *tagged* table (from ``opm-nlp tag``) has them; a *reviewed* table (from a
review tool) also has a ``reviewed`` column, 1 where a person has confirmed or corrected the codes.
Reports and exports use :func:`human_coded_mask` to say what their numbers rest on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from opm_nlp.codebook.codes import Codebook

#: Prefix of the model-score columns of tagged tables (``score_<code id>``).
SCORE_PREFIX = "score_"

#: Ids of the codes suggested for an answer, joined by ``"; "``.
SUGGESTED_COL = "suggested_codes"
#: Ids of the codes whose score lies near their threshold, joined by ``"; "``.
UNCERTAIN_COL = "uncertain_codes"
#: 1 where an answer should be looked at by a person (a code near its threshold, or no text).
NEEDS_REVIEW_COL = "needs_review"

#: The part of each answer that carried each suggested code, for people: ``code_id: "sentence"`` joined
#: by ``"; "`` in codebook order ("" when no code is suggested).
EVIDENCE_COL = "evidence"
#: The same parts for programs: JSON ``{"code_id": [start, end]}``, offsets in Unicode code points into the
#: answer as written in the output ("" when no code is suggested). See :mod:`opm_nlp.io.spans`.
EVIDENCE_SPANS_COL = "evidence_spans"
#: Spans a person marked while reviewing: JSON ``{"code_id": [[start, end], ...]}``, code points.
REVIEWED_SPANS_COL = "reviewed_spans"

#: 1 where a person reviewed the row's codes (written by the review commands).
REVIEWED_COL = "reviewed"
#: Provenance columns written by the review commands, beside ``reviewed``.
REVIEWER_COL = "reviewer"
REVIEWED_AT_COL = "reviewed_at"
CHANGED_COL = "changed_suggestion"
MODEL_VERSION_COL = "model_version"

#: Marks the rows of an audit sample: answers drawn at random and coded blind, to measure the model (never
#: to train it). Every row of an audit file holds the sample's design here, e.g. "simple random sample ...".
AUDIT_COL = "audit_sample"


def output_columns(codebook: Codebook) -> list[str]:
    """Columns that tagging adds to a table: one 0/1 column per code, its score, the summaries and the evidence."""
    return [*codebook.ids, *(SCORE_PREFIX + c for c in codebook.ids), SUGGESTED_COL, UNCERTAIN_COL,
            NEEDS_REVIEW_COL, EVIDENCE_COL, EVIDENCE_SPANS_COL]


def human_coded_mask(frame: pd.DataFrame) -> np.ndarray:
    """Boolean array: True for rows whose codes come from a person.

    A row is human-coded when the table has a ``reviewed`` column and it is 1 for that row, or when
    the table carries no model scores at all (``score_<code>`` columns), i.e. it is coded data.
    """
    if REVIEWED_COL in frame.columns:
        return pd.to_numeric(frame[REVIEWED_COL], errors="coerce").fillna(0).to_numpy() == 1
    has_scores = any(str(c).startswith(SCORE_PREFIX) for c in frame.columns)
    return np.full(len(frame), not has_scores)
