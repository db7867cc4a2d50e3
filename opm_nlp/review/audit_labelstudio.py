"""An audit sample in Label Studio: a blind project, with no suggestion shown or pre-ticked.

:func:`push_audit` sends the answers of an :class:`~opm_nlp.review.audit.AuditSample` to a project
whose interface asks for the coder's own codes (``label_config(codebook, blind=True)``) and whose
tasks carry no predictions, only the answer, its id and the audit's design (``audit_sample``).
:func:`opm_nlp.review.labelstudio.pull_reviews` reads such a project back with the design on every
row. Audit and review projects never mix: each refuses the other's answers.

Examples
--------
>>> sample = draw_audit_sample(tagged, codebook, 150, seed=7, source="tagged.csv")  # doctest: +SKIP
>>> push_audit(server, sample, codebook, "OPM 2022 audit")                          # doctest: +SKIP
"""

from __future__ import annotations

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError
from opm_nlp.io.tables import text_values
from opm_nlp.review.audit import AuditSample
from opm_nlp.review.labelstudio import PushResult
from opm_nlp.review.labelstudio_config import DATA_AUDIT, DATA_ID, DATA_ID_COL, DATA_TEXT, DATA_TEXT_COL
from opm_nlp.review.labelstudio_projects import import_new, open_project
from opm_nlp.review.labelstudio_server import LabelStudioServer


def audit_tasks(sample: AuditSample) -> list[dict]:
    """Label Studio tasks for an audit sample, in its (random) coding order: data only, no predictions."""
    ids = text_values(sample.frame[sample.id_col])
    texts = text_values(sample.frame[sample.text_col])
    return [{"data": {DATA_TEXT: text, DATA_ID: rid, DATA_ID_COL: sample.id_col, DATA_TEXT_COL: sample.text_col,
                      DATA_AUDIT: sample.description}}
            for rid, text in zip(ids, texts)]


#: Why an audit sample never goes into a review or batch project (``{project}`` and ``{url}`` are filled in).
AUDIT_REFUSED = {
    "review": "Project '{project}' on {url} is a review project (the model's suggestions are pre-ticked there); an "
              "audit sample must be coded blind. Use a new --project name for the audit.",
    "batch": "Project '{project}' on {url} holds answers picked by review next to train the model; an audit sample "
             "must never train it. Use a new --project name for the audit.",
}


def push_audit(server: LabelStudioServer, sample: AuditSample, codebook: Codebook, project: str) -> PushResult:
    """Send an audit sample to a blind Label Studio project; create the project if needed.

    Answers already in the project (same response id) are not sent again, so pushing the same sample
    twice adds nothing.

    Parameters
    ----------
    server : LabelStudioServer
        From :func:`opm_nlp.review.labelstudio_server.connect`.
    sample : AuditSample
        From :func:`opm_nlp.review.audit.draw_audit_sample`.
    codebook : Codebook
        The codes to choose from; an existing project must use the same code ids.
    project : str
        Project title.

    Raises
    ------
    ReviewError
        If the project exists and is a review project (suggestions pre-ticked), uses other codes, or
        holds another audit sample.
    ServerError
        If the server refuses a request.
    """
    tasks = audit_tasks(sample)
    description = (f"Audit sample for opm-nlp, coded blind (no suggestions). Codebook '{codebook.name}' version "
                   f"{codebook.version or '-'}. {sample.description}.")
    project_id, created = open_project(server, project, codebook, "audit", description, AUDIT_REFUSED)
    if not created:
        present = server.response_ids(project_id)
        others = server.task_values(project_id, DATA_AUDIT) - {sample.description}
        if others and any(t["data"][DATA_ID] not in present for t in tasks):
            raise ReviewError(f"Project '{project}' on {server.url} holds another audit sample "
                              f"({min(others)}); one project holds one sample, so that its design is known. "
                              f"Use a new --project name, or repeat that draw with its --seed.")
    added, already = import_new(server, project_id, tasks, created)
    return PushResult(project_id=project_id, created_project=created, added=added, already_there=already,
                      empty_skipped=0, url=f"{server.url}/projects/{project_id}/data")
