"""A batch to code next (``opm-nlp review next``) in Label Studio: blind, or with suggestions pre-ticked.

A blind batch goes to a project whose interface asks for the coder's own codes and shows how the
answers were picked (``label_config(codebook, batch=True)``); its tasks carry no predictions. With
suggestions it goes to a review project as ``review push`` makes one (:func:`~opm_nlp.review.labelstudio.build_tasks`).
Either way the tasks keep the order picked, and :func:`opm_nlp.review.labelstudio.pull_reviews` reads
the project back as training data. The project rules are those of ``review push`` and ``review
sample``: one set of codes per project; audit samples (never trained on), blind batches and review
projects (suggestions shown) never mix.

Examples
--------
>>> batch = pick_next_batch(pool, codebook, 100, model=model, seed=3)  # doctest: +SKIP
>>> push_next(server, batch, codebook, "OPM next 100")                 # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import SCORE_PREFIX
from opm_nlp.io.tables import text_values
from opm_nlp.review.labelstudio import PushResult, build_tasks, open_review_project
from opm_nlp.review.labelstudio_config import DATA_BATCH, DATA_ID, DATA_ID_COL, DATA_TEXT, DATA_TEXT_COL
from opm_nlp.review.labelstudio_projects import import_new, open_project
from opm_nlp.review.labelstudio_server import LabelStudioServer
from opm_nlp.review.next_batch import NextBatch


def batch_tasks(batch: NextBatch, codebook: Codebook, model_version: str | None = None,
                rule: DecisionRule | None = None) -> list[dict]:
    """Label Studio tasks for a batch, in the order picked: data only when blind, else with the model's
    suggestion as a prediction (``model_version`` and ``rule`` needed then)."""
    frame = batch.frame
    ids = text_values(frame[batch.id_col])
    if not batch.with_suggestions:
        texts = text_values(frame[batch.text_col])
        return [{"data": {DATA_TEXT: text, DATA_ID: rid, DATA_ID_COL: batch.id_col, DATA_TEXT_COL: batch.text_col,
                          DATA_BATCH: batch.description}} for rid, text in zip(ids, texts)]
    scores = np.column_stack([pd.to_numeric(frame[SCORE_PREFIX + c]).to_numpy(dtype=float) for c in codebook.ids])
    tasks = build_tasks(frame, scores, codebook, batch.text_col, batch.id_col, model_version, rule)
    position = {rid: i for i, rid in enumerate(ids)}
    return sorted(tasks, key=lambda task: position[task["data"][DATA_ID]])


#: Why a blind batch never goes into an audit or a review project (``{project}`` and ``{url}`` are filled in).
BATCH_REFUSED = {
    "audit": "Project '{project}' on {url} holds an audit sample, which measures the model and is never trained on; "
             "answers to code next go to another --project.",
    "review": "Project '{project}' on {url} is a review project (the model's suggestions are pre-ticked there); a blind "
              "batch goes to another --project, or pass --with-suggestions to add it there.",
}


def push_next(server: LabelStudioServer, batch: NextBatch, codebook: Codebook, project: str,
              model_version: str | None = None, rule: DecisionRule | None = None,
              update_config: bool = False) -> PushResult:
    """Send a batch to a Label Studio project (created if needed); answers already there are not sent again.

    Parameters
    ----------
    server : LabelStudioServer
    batch : NextBatch
        From :func:`opm_nlp.review.next_batch.pick_next_batch`.
    codebook : Codebook
    project : str
        Project title.
    model_version, rule
        For a batch with suggestions (:func:`opm_nlp.review.common.model_version`,
        :func:`~opm_nlp.review.common.decision_rule_of`).
    update_config : bool
        Give a project made before opm-nlp marked evidence the current interface (see
        :func:`~opm_nlp.review.labelstudio_projects.open_project`; a review project is refused without it).

    Raises
    ------
    ReviewError
        If the project uses other codes, holds an audit sample, or is a review project (suggestions
        pre-ticked) for a blind batch / a blind batch project for one with suggestions.
    ServerError
        If the server refuses a request.
    """
    tasks = batch_tasks(batch, codebook, model_version, rule)
    if batch.with_suggestions:
        project_id, created = open_review_project(server, project, codebook, model_version, update_config)
    else:
        description = (f"Answers picked by opm-nlp review next to code blind and train the model. Codebook "
                       f"'{codebook.name}' version {codebook.version or '-'}.")
        project_id, created = open_project(server, project, codebook, "batch", description, BATCH_REFUSED,
                                           update_config=update_config)
    added, already = import_new(server, project_id, tasks, created, model_version if batch.with_suggestions else None)
    return PushResult(project_id=project_id, created_project=created, added=added, already_there=already,
                      empty_skipped=0, url=f"{server.url}/projects/{project_id}/data")
