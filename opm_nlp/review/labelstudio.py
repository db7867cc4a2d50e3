"""Review in Label Studio: push suggestions as pre-annotated tasks, pull reviewers' codes back.

One Label Studio *project* holds one review: a task per answer, with the model's suggestion as a
pre-annotation (a prediction) that the reviewer confirms or corrects. The project's labeling
interface comes from :mod:`opm_nlp.review.labelstudio_config`, the connection from
:mod:`opm_nlp.review.labelstudio_server`; this module turns a tagged table into tasks and the
project's export back into a reviewed table.

Examples
--------
>>> from opm_nlp.review.labelstudio_server import connect                   # doctest: +SKIP
>>> server = connect("http://localhost:8080", api_key)                      # doctest: +SKIP
>>> push_tagged(server, tagged, codebook, "OPM wave 2022", model_version=mv)  # doctest: +SKIP
>>> result = pull_reviews(server, "OPM wave 2022", codebook)                  # doctest: +SKIP
>>> result.table.head()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_nlp.columns import SUGGESTED_COL, UNCERTAIN_COL
from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError
from opm_nlp.columns import (
    AUDIT_COL,
    CHANGED_COL,
    MODEL_VERSION_COL,
    REVIEWED_AT_COL,
    REVIEWED_COL,
    REVIEWER_COL,
)
from opm_nlp.io.tables import answered
from opm_nlp.model.reviewed import split_codes
from opm_nlp.review.common import UNCERTAINTY_COL, uncertainty
from opm_nlp.review.labelstudio_config import (
    CHOICES_NAME,
    DATA_AUDIT,
    DATA_ID,
    DATA_ID_COL,
    DATA_NOTE,
    DATA_TEXT,
    DATA_TEXT_COL,
    TEXT_NAME,
    codes_in_config,
    instructions_html,
    is_audit_config,
    is_batch_config,
    label_config,
)
from opm_nlp.review.labelstudio_server import LabelStudioServer

logger = logging.getLogger(__name__)

IMPORT_BATCH = 500


# -- push ------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    """What :func:`push_tagged` did."""

    project_id: int
    created_project: bool
    added: int
    already_there: int
    empty_skipped: int
    url: str = ""


def build_tasks(tagged: pd.DataFrame, scores: np.ndarray, codebook: Codebook, text_col: str, id_col: str,
                model_version: str, thresholds: np.ndarray) -> list[dict]:
    """Label Studio tasks (data + prediction) for the answers of a tagged table, least certain first.

    Empty answers are left out: there is nothing to review. The per-code scores go into the task
    data (``score_<code>``, sortable in the Data Manager) with ``uncertainty`` (0-1); the prediction's
    ``score`` is the model's confidence, ``1 - uncertainty``, so sorting it ascending also puts the
    least certain answers first.
    """
    ids = codebook.ids
    unsure = uncertainty(scores, thresholds)
    order = np.argsort(-unsure, kind="stable")
    has_text = answered(tagged[text_col])
    tasks = []
    for i in order:
        if not has_text[i]:
            continue
        row = tagged.iloc[i]
        text = str(row[text_col])
        suggested = [c for c in ids if int(row[c]) == 1]
        uncertain = split_codes(row.get(UNCERTAIN_COL, ""), codebook, f"column '{UNCERTAIN_COL}'")
        note = ("The model is unsure about: " + ", ".join(codebook[c].label for c in uncertain)) if uncertain else ""
        data = {
            DATA_TEXT: text, DATA_ID: str(row[id_col]), DATA_ID_COL: id_col, DATA_TEXT_COL: text_col,
            SUGGESTED_COL: "; ".join(suggested), UNCERTAIN_COL: "; ".join(uncertain), DATA_NOTE: note,
            UNCERTAINTY_COL: round(float(unsure[i]), 4), MODEL_VERSION_COL: model_version,
        }
        for j, code_id in enumerate(ids):
            value = scores[i, j]
            data[f"score_{code_id}"] = None if math.isnan(value) else round(float(value), 4)
        result = [{"from_name": CHOICES_NAME, "to_name": TEXT_NAME, "type": "choices",
                   "value": {"choices": suggested}}] if suggested else []
        tasks.append({"data": data, "predictions": [
            {"model_version": model_version, "score": round(1.0 - float(unsure[i]), 4), "result": result}]})
    return tasks


def push_tagged(server: LabelStudioServer, tagged: pd.DataFrame, scores: np.ndarray, codebook: Codebook,
                project: str, text_col: str, id_col: str, model_version: str, thresholds: np.ndarray) -> PushResult:
    """Send tagged answers to a Label Studio project for review; create the project if needed.

    Answers whose response id is already in the project are not sent again, so pushing the same
    file twice adds nothing and a later wave adds only its new answers.

    Parameters
    ----------
    server : LabelStudioServer
        From :func:`opm_nlp.review.labelstudio_server.connect`.
    tagged, scores
        From :func:`opm_nlp.review.common.prepare_for_review`.
    codebook : Codebook
        The codebook the answers were tagged with; an existing project must use the same code ids.
    project : str
        Project title.
    text_col, id_col : str
        Answer and id columns (their names are kept so ``pull`` writes the same columns).
    model_version : str
        Stamped on every prediction (see :func:`opm_nlp.review.common.model_version`).
    thresholds : ndarray
        Per-code thresholds, to measure uncertainty.

    Raises
    ------
    ReviewError
        If the project exists with different codes, or holds an audit sample (coded blind).
    ServerError
        If the server refuses a request.
    """
    project_id, created = _open_project(server, project, codebook, model_version)
    present = server.response_ids(project_id) if not created else set()
    tasks = build_tasks(tagged, scores, codebook, text_col, id_col, model_version, thresholds)
    empty = int(len(tagged) - len(tasks))
    new = [t for t in tasks if t["data"][DATA_ID] not in present]
    for start in range(0, len(new), IMPORT_BATCH):
        server.call("importing tasks", server.client.projects.import_tasks, id=project_id,
                    request=new[start:start + IMPORT_BATCH], return_task_ids=True)
    logger.info("project %s: %d tasks added, %d already present", project_id, len(new), len(tasks) - len(new))
    return PushResult(project_id=project_id, created_project=created, added=len(new),
                      already_there=len(tasks) - len(new), empty_skipped=empty,
                      url=f"{server.url}/projects/{project_id}/data")


def _open_project(server: LabelStudioServer, project: str, codebook: Codebook, model_version: str
                  ) -> tuple[int, bool]:
    """The id of the project titled ``project`` and whether it was just created.

    A new project gets the labeling interface and instructions made from ``codebook``; an existing
    one must use the same code ids, and is switched to ``model_version`` so Label Studio pre-fills
    tasks with this model's predictions.
    """
    client = server.client
    existing = server.find_project(project)
    if existing is None:
        created = server.call(
            "creating the project", client.projects.create,
            title=project, label_config=label_config(codebook), model_version=model_version,
            show_collab_predictions=True,
            description=(f"Review of opm-nlp suggestions. Codebook '{codebook.name}' version "
                         f"{codebook.version or '-'}, fingerprint {codebook.fingerprint}."),
            expert_instruction=instructions_html(codebook), show_instruction=True,
        )
        return created.id, True
    kind = project_kind(server, existing.id, project, codebook)
    if kind == "audit":
        raise ReviewError(f"Project '{project}' on {server.url} holds an audit sample, coded blind: its coders must "
                          f"not see suggestions. Push the suggestions for review to another --project.")
    if kind == "batch":
        raise ReviewError(f"Project '{project}' on {server.url} holds answers picked by review next to code blind: "
                          f"its coders must not see suggestions. Push the suggestions for review to another --project.")
    if getattr(existing, "model_version", None) != model_version:
        # Label Studio pre-fills tasks with predictions of the project's model version.
        server.call("updating the project's model version", client.projects.update, id=existing.id,
                    model_version=model_version)
    return existing.id, False


def check_project(server: LabelStudioServer, project_id: int, project: str, codebook: Codebook) -> bool:
    """Raise :class:`ReviewError` unless the project's interface lists exactly the codebook's code ids.

    Returns True for an audit project (coded blind, :func:`~opm_nlp.review.labelstudio_config.is_audit_config`).
    """
    return project_kind(server, project_id, project, codebook) == "audit"


def project_kind(server: LabelStudioServer, project_id: int, project: str, codebook: Codebook) -> str:
    """``'review'`` (suggestions pre-ticked), ``'audit'`` (an audit sample, coded blind) or ``'batch'`` (answers
    picked by ``review next``, coded blind to train the model), after the checks of :func:`check_project`."""
    details = server.call("reading the project", server.client.projects.get, project_id)
    codes = codes_in_config(getattr(details, "label_config", "") or "")
    if not codes:
        raise ReviewError(f"Project '{project}' on {server.url} was not made by opm-nlp review push (its "
                          f"interface has no '{CHOICES_NAME}' list); use another --project name.")
    if set(codes) != set(codebook.ids):
        extra, missing = sorted(set(codes) - set(codebook.ids)), sorted(set(codebook.ids) - set(codes))
        raise ReviewError(f"Project '{project}' on {server.url} uses other codes than the codebook "
                          f"(only in the project: {extra}; only in the codebook: {missing}). Pass the codebook "
                          f"the project was made with, or use a new --project name.")
    config = getattr(details, "label_config", "") or ""
    return "audit" if is_audit_config(config) else "batch" if is_batch_config(config) else "review"


# -- pull ------------------------------------------------------------------------------------------
@dataclass
class PullResult:
    """What :func:`pull_reviews` read: the reviewed table and counts."""

    table: pd.DataFrame
    id_col: str
    text_col: str
    tasks: int
    reviewed: int
    skipped: int
    several_reviews: int
    project_id: int
    audit: bool = False
    blind: bool = False


def pull_reviews(server: LabelStudioServer, project: str, codebook: Codebook,
                 include_unreviewed: bool = False) -> PullResult:
    """Read reviewers' codes from a Label Studio project as a wide reviewed table.

    Each task's latest submitted (not skipped) annotation is the review. Output columns: the id and
    answer columns (named as in the pushed file), ``reviewed``, ``reviewer`` (e-mail),
    ``reviewed_at``, ``changed_suggestion`` (1 when the reviewer's codes differ from the model's),
    ``model_version``, ``suggested_codes``, then one 0/1 column per code id. From an audit project
    (coded blind, no suggestions) the columns are the id and answer, ``reviewed``, ``reviewer``,
    ``reviewed_at``, the codes and ``audit_sample`` (the design, on every row); from a blind batch of
    ``review next`` the same without ``audit_sample``.

    Parameters
    ----------
    include_unreviewed : bool
        Also keep answers nobody reviewed yet, with ``reviewed`` = 0 and the model's suggestion as
        codes. By default they are left out, so the file holds human codes only.

    Raises
    ------
    ReviewError
        If the project does not exist, uses other codes, or holds tasks not pushed by opm-nlp.
    """
    found = server.find_project(project)
    if found is None:
        titles = server.project_titles()
        raise ReviewError(f"No project titled '{project}' on {server.url}. Projects there: {titles[:10]}"
                          f"{' ...' if len(titles) > 10 else ''}. Check --project (review push creates it).")
    kind = project_kind(server, found.id, project, codebook)
    audit = kind == "audit"
    export = server.call("exporting the project", server.client.projects.exports.as_json, found.id)
    emails = server.user_emails()
    rows, columns = [], set()
    for task in export:
        data = task.get("data") or {}
        if DATA_ID not in data:
            raise ReviewError(f"Task {task.get('id')} of project '{project}' has no '{DATA_ID}' in its data; "
                              f"the project holds tasks not pushed by opm-nlp review push.")
        columns.add((data.get(DATA_ID_COL, DATA_ID), data.get(DATA_TEXT_COL, DATA_TEXT)))
        row = _review_row(task, codebook, emails, f"project '{project}', task {task.get('id')} ({data[DATA_ID]})",
                          include_unreviewed)
        if row is not None:
            rows.append(row)
    if len(columns) > 1:
        raise ReviewError(f"Project '{project}' mixes answers pushed with different id/text columns "
                          f"{sorted(columns)}; pull them into separate files from separate projects.")
    id_col, text_col = next(iter(columns)) if columns else (DATA_ID, DATA_TEXT)
    order = [REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL, CHANGED_COL, MODEL_VERSION_COL, SUGGESTED_COL]
    if kind != "review":  # nothing was suggested: no suggestion to have changed, no model behind it
        order = [REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL]
    table = pd.DataFrame(rows, columns=["_id", "_text", *order, *codebook.ids, *([AUDIT_COL] if audit else [])])
    table = table.rename(columns={"_id": id_col, "_text": text_col}).sort_values(id_col, kind="stable")
    reviewed = sum(1 for t in export if _submitted(t))
    skipped = sum(1 for t in export
                  if not _submitted(t) and any(a.get("was_cancelled") for a in t.get("annotations") or []))
    several = sum(1 for t in export if len(_submitted(t)) > 1)
    return PullResult(table=table.reset_index(drop=True), id_col=id_col, text_col=text_col, tasks=len(export),
                      reviewed=reviewed, skipped=skipped, several_reviews=several, project_id=found.id, audit=audit,
                      blind=kind != "review")


def _submitted(task: dict) -> list[dict]:
    """A task's annotations that were submitted, not skipped (``was_cancelled``)."""
    return [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]


def _review_row(task: dict, codebook: Codebook, emails: dict, where: str, include_unreviewed: bool) -> dict | None:
    """The reviewed-table row of one exported task, or None for an unreviewed task left out.

    The latest submitted annotation is the review; a task nobody reviewed keeps the model's
    suggestion as its codes (``reviewed`` = 0) when ``include_unreviewed``.
    """
    data = task["data"]
    suggested = split_codes(data.get(SUGGESTED_COL, ""), codebook, where)
    done = _submitted(task)
    if not done and not include_unreviewed:
        return None
    row = {"_id": str(data[DATA_ID]), "_text": data.get(DATA_TEXT, ""), REVIEWED_COL: int(bool(done)),
           REVIEWER_COL: "", REVIEWED_AT_COL: "", CHANGED_COL: 0,
           MODEL_VERSION_COL: data.get(MODEL_VERSION_COL, ""), SUGGESTED_COL: "; ".join(suggested)}
    chosen = suggested
    if done:
        latest = max(done, key=lambda a: a.get("updated_at") or a.get("created_at") or "")
        chosen = _choices(latest, codebook, where)
        author = latest.get("completed_by")
        if isinstance(author, dict):
            author = author.get("email") or author.get("id")
        row[REVIEWER_COL] = emails.get(author, str(author or ""))
        row[REVIEWED_AT_COL] = latest.get("updated_at") or latest.get("created_at") or ""
        row[CHANGED_COL] = int(set(chosen) != set(suggested))
    row.update((code_id, int(code_id in chosen)) for code_id in codebook.ids)
    row[AUDIT_COL] = data.get(DATA_AUDIT, "")
    return row


def _choices(annotation: dict, codebook: Codebook, where: str) -> list[str]:
    """Code ids a reviewer ticked in one annotation, in order, each once."""
    chosen = []
    for item in annotation.get("result") or []:
        if item.get("from_name") != CHOICES_NAME or item.get("type") != "choices":
            continue
        for value in (item.get("value") or {}).get("choices") or []:
            value = value[-1] if isinstance(value, list) else value  # nested choices give a path
            if value not in codebook:
                raise ReviewError(f"{where}: the reviewer chose '{value}', which is not a code id of the "
                                  f"codebook {codebook.ids}. Pass the codebook the project was made with.")
            if value not in chosen:
                chosen.append(value)
    return chosen
