"""Who coded what: telling human codes from model suggestions in a table.

Tables move through the pipeline in one wide format. A *coded* table (from people) has no
``score_<code>`` columns; a *tagged* table (from ``opm-nlp tag``) has them; a *reviewed* table (from a
review tool) also has a ``reviewed`` column, 1 where a person has confirmed or corrected the codes.
Reports and exports use :func:`human_coded_mask` to say what their numbers rest on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Prefix of the model-score columns of tagged tables (``score_<code id>``). Defined here, in a module
#: without heavy imports, so that checking a table's provenance does not load scikit-learn or torch.
SCORE_PREFIX = "score_"

#: 1 where a person reviewed the row's codes (written by the review commands).
REVIEWED_COL = "reviewed"
#: Provenance columns written by the review commands, beside ``reviewed``.
REVIEWER_COL = "reviewer"
REVIEWED_AT_COL = "reviewed_at"
CHANGED_COL = "changed_suggestion"
MODEL_VERSION_COL = "model_version"


def human_coded_mask(frame: pd.DataFrame) -> np.ndarray:
    """Boolean array: True for rows whose codes come from a person.

    A row is human-coded when the table has a ``reviewed`` column and it is 1 for that row, or when
    the table carries no model scores at all (``score_<code>`` columns), i.e. it is coded data.
    """
    if REVIEWED_COL in frame.columns:
        return pd.to_numeric(frame[REVIEWED_COL], errors="coerce").fillna(0).to_numpy() == 1
    has_scores = any(str(c).startswith(SCORE_PREFIX) for c in frame.columns)
    return np.full(len(frame), not has_scores)
