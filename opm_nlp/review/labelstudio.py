"""Review in Label Studio: push suggestions as pre-annotated tasks, pull reviewers' codes back.

One Label Studio *project* holds one review: a task per answer, with the model's suggestion as a
pre-annotation (a prediction) that the reviewer confirms or corrects: its codes pre-ticked and, where the
tagged table has ``evidence_spans``, the words that carried each code highlighted and labelled with it.
The project's labeling interface comes from :mod:`opm_nlp.review.labelstudio_config`, opening it from
:mod:`opm_nlp.review.labelstudio_projects`, the connection from :mod:`opm_nlp.review.labelstudio_server`;
this module turns a tagged table into tasks and the project's export back into a reviewed table, with the
spans reviewers marked in ``reviewed_spans`` (:mod:`opm_nlp.review.labelstudio_spans`).

Examples
--------
>>> from opm_nlp.review.labelstudio_server import connect                   # doctest: +SKIP
>>> server = connect("http://localhost:8080", api_key)                      # doctest: +SKIP
>>> push_tagged(server, tagged, codebook, "OPM wave 2022", model_version=mv)  # doctest: +SKIP
>>> result = pull_reviews(server, "OPM wave 2022", codebook)                  # doctest: +SKIP
>>> result.table.head()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import (
    AUDIT_COL,
    CHANGED_COL,
    EVIDENCE_SPANS_COL,
    MODEL_VERSION_COL,
    REVIEWED_AT_COL,
    REVIEWED_COL,
    REVIEWED_SPANS_COL,
    REVIEWER_COL,
    SUGGESTED_COL,
    UNCERTAIN_COL,
)
from opm_nlp.exceptions import ReviewError
from opm_nlp.io.spans import format_spans
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
)
from opm_nlp.review.labelstudio_projects import import_new, open_project, project_kind
from opm_nlp.review.labelstudio_server import LabelStudioServer
from opm_nlp.review.labelstudio_spans import evidence_regions, reviewed_spans


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
                model_version: str, rule: DecisionRule | np.ndarray, source: str = "the tagged table") -> list[dict]:
    """Label Studio tasks (data + prediction) for the answers of a tagged table, least certain first.

    Empty answers are left out: there is nothing to review. The per-code scores go into the task
    data (``score_<code>``, sortable in the Data Manager) with ``uncertainty`` (0-1); the prediction's
    ``score`` is the model's confidence, ``1 - uncertainty``, so sorting it ascending also puts the
    least certain answers first. The prediction ticks the suggested codes and, when the table has an
    ``evidence_spans`` column, marks each one's evidence as a span labelled with the code. ``source`` names
    the table in errors.
    """
    ids = codebook.ids
    unsure = uncertainty(scores, rule)
    order = np.argsort(-unsure, kind="stable")
    has_text = answered(tagged[text_col])
    has_evidence = EVIDENCE_SPANS_COL in tagged.columns
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
        if has_evidence and suggested:
            where = f"{source}, column '{EVIDENCE_SPANS_COL}', answer {row[id_col]}"
            result += evidence_regions(text, row[EVIDENCE_SPANS_COL], suggested, where)
        tasks.append({"data": data, "predictions": [
            {"model_version": model_version, "score": round(1.0 - float(unsure[i]), 4), "result": result}]})
    return tasks


def push_tagged(server: LabelStudioServer, tagged: pd.DataFrame, scores: np.ndarray, codebook: Codebook,
                project: str, text_col: str, id_col: str, model_version: str, rule: DecisionRule | np.ndarray,
                update_config: bool = False, source: str = "the tagged table") -> PushResult:
    """Send tagged answers to a Label Studio project for review; create the project if needed.

    Answers whose response id is already in the project are not sent again, so pushing the same
    file twice adds nothing and a later wave adds only its new answers. Each task's prediction ticks
    the suggested codes and highlights their evidence (``evidence_spans``, when the table has it).

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
    rule : DecisionRule or ndarray
        The model's decision rule (:func:`opm_nlp.review.common.decision_rule_of`) or per-code
        thresholds, to measure uncertainty.
    update_config : bool
        Give a project made before opm-nlp marked evidence the interface that highlights it (without
        it such a project is refused).
    source : str
        Names the table in error messages (usually its path).

    Raises
    ------
    ReviewError
        If the project exists with different codes, holds an audit sample or a blind batch (coded blind),
        or was made before evidence and ``update_config`` is False; or an ``evidence_spans`` cell is not
        valid.
    ServerError
        If the server refuses a request.
    """
    tasks = build_tasks(tagged, scores, codebook, text_col, id_col, model_version, rule, source=source)
    project_id, created = open_review_project(server, project, codebook, model_version, update_config)
    added, already = import_new(server, project_id, tasks, created, model_version)
    return PushResult(project_id=project_id, created_project=created, added=added, already_there=already,
                      empty_skipped=int(len(tagged) - len(tasks)), url=f"{server.url}/projects/{project_id}/data")


#: Why suggestions never go into a blind project (``{project}`` and ``{url}`` are filled in).
SUGGESTIONS_REFUSED = {
    "audit": "Project '{project}' on {url} holds an audit sample, coded blind: its coders must not see suggestions. "
             "Push the suggestions for review to another --project.",
    "batch": "Project '{project}' on {url} holds answers picked by review next to code blind: its coders must not "
             "see suggestions. Push the suggestions for review to another --project.",
}


def open_review_project(server: LabelStudioServer, project: str, codebook: Codebook, model_version: str,
                        update_config: bool = False) -> tuple[int, bool]:
    """The id of the review project titled ``project`` (created if missing) and whether it was just created;
    see :func:`~opm_nlp.review.labelstudio_projects.open_project`."""
    description = (f"Review of opm-nlp suggestions. Codebook '{codebook.name}' version {codebook.version or '-'}, "
                   f"fingerprint {codebook.fingerprint}.")
    return open_project(server, project, codebook, "review", description, SUGGESTIONS_REFUSED,
                        update_config=update_config, model_version=model_version)


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
    #: Spans reviewers left on codes they did not tick (e.g. the evidence of a suggestion they unticked): not
    #: in ``reviewed_spans``, which holds the spans of the codes ticked.
    spans_left_out: int = 0


def pull_reviews(server: LabelStudioServer, project: str, codebook: Codebook,
                 include_unreviewed: bool = False) -> PullResult:
    """Read reviewers' codes from a Label Studio project as a wide reviewed table.

    Each task's latest submitted (not skipped) annotation is the review. Output columns: the id and
    answer columns (named as in the pushed file), ``reviewed``, ``reviewer`` (e-mail),
    ``reviewed_at``, ``changed_suggestion`` (1 when the reviewer's codes differ from the model's),
    ``model_version``, ``suggested_codes``, then one 0/1 column per code id and ``reviewed_spans``: the
    spans of the answer the reviewer left marked with a code they ticked (the model's evidence they kept,
    and any they marked), JSON ``{"code": [[start, end], ...]}`` in code points (:mod:`opm_nlp.io.spans`).
    From an audit project (coded blind, no suggestions) the columns are the id and answer, ``reviewed``,
    ``reviewer``, ``reviewed_at``, the codes, ``reviewed_spans`` and ``audit_sample`` (the design, on every
    row); from a blind batch of ``review next`` the same without ``audit_sample``.

    Parameters
    ----------
    include_unreviewed : bool
        Also keep answers nobody reviewed yet, with ``reviewed`` = 0 and the model's suggestion as
        codes. By default they are left out, so the file holds human codes only.

    Raises
    ------
    ReviewError
        If the project does not exist, uses other codes, or holds tasks not pushed by opm-nlp, or a
        reviewer's span is labelled with a code the codebook lacks or does not fit its answer.
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
    table = pd.DataFrame(rows, columns=["_id", "_text", *order, *codebook.ids, REVIEWED_SPANS_COL,
                                        *([AUDIT_COL] if audit else [])])
    table = table.rename(columns={"_id": id_col, "_text": text_col}).sort_values(id_col, kind="stable")
    reviewed = sum(1 for t in export if _submitted(t))
    skipped = sum(1 for t in export
                  if not _submitted(t) and any(a.get("was_cancelled") for a in t.get("annotations") or []))
    several = sum(1 for t in export if len(_submitted(t)) > 1)
    return PullResult(table=table.reset_index(drop=True), id_col=id_col, text_col=text_col, tasks=len(export),
                      reviewed=reviewed, skipped=skipped, several_reviews=several, project_id=found.id, audit=audit,
                      blind=kind != "review", spans_left_out=sum(row["_spans_left_out"] for row in rows))


def _submitted(task: dict) -> list[dict]:
    """A task's annotations that were submitted, not skipped (``was_cancelled``)."""
    return [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]


def _review_row(task: dict, codebook: Codebook, emails: dict, where: str, include_unreviewed: bool) -> dict | None:
    """The reviewed-table row of one exported task, or None for an unreviewed task left out.

    The latest submitted annotation is the review; a task nobody reviewed keeps the model's
    suggestion as its codes (``reviewed`` = 0) and no reviewed spans when ``include_unreviewed``.
    ``_spans_left_out`` counts the reviewer's spans on codes not ticked.
    """
    data = task["data"]
    suggested = split_codes(data.get(SUGGESTED_COL, ""), codebook, where)
    done = _submitted(task)
    if not done and not include_unreviewed:
        return None
    row = {"_id": str(data[DATA_ID]), "_text": data.get(DATA_TEXT, ""), REVIEWED_COL: int(bool(done)),
           REVIEWER_COL: "", REVIEWED_AT_COL: "", CHANGED_COL: 0,
           MODEL_VERSION_COL: data.get(MODEL_VERSION_COL, ""), SUGGESTED_COL: "; ".join(suggested),
           REVIEWED_SPANS_COL: "", "_spans_left_out": 0}
    chosen = suggested
    if done:
        latest = max(done, key=lambda a: a.get("updated_at") or a.get("created_at") or "")
        chosen = _choices(latest, codebook, where)
        spans = reviewed_spans(latest, str(data.get(DATA_TEXT, "")), codebook, where)
        row[REVIEWED_SPANS_COL] = format_spans({code: found for code, found in spans.items() if code in chosen})
        row["_spans_left_out"] = sum(len(found) for code, found in spans.items() if code not in chosen)
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
