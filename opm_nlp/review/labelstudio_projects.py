"""Label Studio projects as opm-nlp makes them: open or create one of a kind, and add tasks to it.

A project is one of three kinds, told apart by its labeling interface
(:mod:`opm_nlp.review.labelstudio_config`): ``'review'`` (the model's suggestions pre-ticked and its
evidence highlighted: ``review push``, ``review next --with-suggestions``), ``'audit'`` (an audit sample,
coded blind: ``review sample``) and ``'batch'`` (answers picked by ``review next``, coded blind). Kinds
never mix, and a project keeps one set of codes. :func:`open_project` is the one place that opens or
creates a project for each push command; :func:`import_new` adds the tasks not there yet.

Examples
--------
>>> project_id, created = open_project(server, "OPM wave 2022", codebook, "review", "Review of ...",
...                                    refusals={}, model_version=mv)                   # doctest: +SKIP
>>> added, already = import_new(server, project_id, tasks, created)                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError
from opm_nlp.review.labelstudio_config import (
    CHOICES_NAME,
    DATA_ID,
    codes_in_config,
    has_span_labels,
    instructions_html,
    is_audit_config,
    is_batch_config,
    label_config,
)
from opm_nlp.review.labelstudio_server import LabelStudioServer

logger = logging.getLogger(__name__)

#: Tasks sent per import request.
IMPORT_BATCH = 500
#: The project kinds, as :func:`project_kind` names them.
KINDS = ("review", "audit", "batch")


def project_config(server: LabelStudioServer, project_id: int, project: str, codebook: Codebook) -> tuple[str, str]:
    """The kind of a project (see :func:`project_kind`) and its labeling config, after checking its codes."""
    details = server.call("reading the project", server.client.projects.get, project_id)
    config = getattr(details, "label_config", "") or ""
    codes = codes_in_config(config)
    if not codes:
        raise ReviewError(f"Project '{project}' on {server.url} was not made by opm-nlp review push (its "
                          f"interface has no '{CHOICES_NAME}' list); use another --project name.")
    if set(codes) != set(codebook.ids):
        extra, missing = sorted(set(codes) - set(codebook.ids)), sorted(set(codebook.ids) - set(codes))
        raise ReviewError(f"Project '{project}' on {server.url} uses other codes than the codebook "
                          f"(only in the project: {extra}; only in the codebook: {missing}). Pass the codebook "
                          f"the project was made with, or use a new --project name.")
    return "audit" if is_audit_config(config) else "batch" if is_batch_config(config) else "review", config


def project_kind(server: LabelStudioServer, project_id: int, project: str, codebook: Codebook) -> str:
    """``'review'`` (suggestions pre-ticked), ``'audit'`` (an audit sample, coded blind) or ``'batch'`` (answers
    picked by ``review next``, coded blind to train the model).

    Raises :class:`ReviewError` unless the project's interface lists exactly the codebook's code ids.
    """
    return project_config(server, project_id, project, codebook)[0]


def open_project(server: LabelStudioServer, project: str, codebook: Codebook, kind: str, description: str,
                 refusals: Mapping[str, str], update_config: bool = False, model_version: str | None = None
                 ) -> tuple[int, bool]:
    """The id of the project titled ``project`` and whether it was just created.

    A new project gets the interface and instructions of ``kind`` made from ``codebook``. An existing one
    must use the same code ids, and is refused with ``refusals[its kind]`` when its kind is there. An
    existing project made before opm-nlp marked evidence (its interface has no span labels,
    :func:`~opm_nlp.review.labelstudio_config.has_span_labels`) gets the current interface and instructions
    when ``update_config``; without it a review project is refused (its reviewers would not see the
    evidence), while a blind one, which shows no evidence, is used as it is. ``model_version``: the version
    a new review project pre-fills tasks from (an existing one switches in :func:`import_new`, once it holds
    predictions of that version: Label Studio refuses a version it has no predictions of).

    Raises
    ------
    ReviewError
        If the project uses other codes, is of a refused kind, or is a review project made before evidence
        and ``update_config`` is False.
    ServerError
        If the server refuses a request.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, found {kind!r}")
    client = server.client
    blind, batch = kind == "audit", kind == "batch"
    existing = server.find_project(project)
    if existing is None:
        created = server.call(
            "creating the project", client.projects.create,
            title=project, label_config=label_config(codebook, blind=blind, batch=batch),
            show_collab_predictions=kind == "review", description=description,
            expert_instruction=instructions_html(codebook, blind=blind, batch=batch), show_instruction=True,
            **({"model_version": model_version} if model_version is not None else {}),
        )
        return created.id, True
    found, config = project_config(server, existing.id, project, codebook)
    if found in refusals:
        raise ReviewError(refusals[found].format(project=project, url=server.url))
    changes = {}
    if not has_span_labels(config):
        if update_config:
            blind, batch = found == "audit", found == "batch"
            changes.update(label_config=label_config(codebook, blind=blind, batch=batch),
                           expert_instruction=instructions_html(codebook, blind=blind, batch=batch))
        elif found == "review":
            raise ReviewError(f"Project '{project}' on {server.url} was made before opm-nlp marked evidence, so its "
                              f"interface cannot highlight the words that carried each code. Pass --update-config to "
                              f"add that to its interface (its answers and reviews are kept), or use a new --project "
                              f"name.")
    if changes:
        server.call("updating the project's interface", client.projects.update, id=existing.id, **changes)
        logger.info("project %s: interface updated to mark evidence", existing.id)
    return existing.id, False


def import_new(server: LabelStudioServer, project_id: int, tasks: list[dict], created: bool,
               model_version: str | None = None) -> tuple[int, int]:
    """Send the tasks whose response id is not in the project yet; return (added, already there).

    ``model_version``: the version of the tasks' predictions, which an existing project switches to once
    tasks with them were added, so that Label Studio pre-fills tasks with this model's predictions.
    """
    present = set() if created else server.response_ids(project_id)
    new = [t for t in tasks if t["data"][DATA_ID] not in present]
    for start in range(0, len(new), IMPORT_BATCH):
        server.call("importing tasks", server.client.projects.import_tasks, id=project_id,
                    request=new[start:start + IMPORT_BATCH], return_task_ids=True)
    logger.info("project %s: %d tasks added, %d already present", project_id, len(new), len(tasks) - len(new))
    if model_version is not None and new and not created:
        details = server.call("reading the project", server.client.projects.get, project_id)
        if getattr(details, "model_version", None) != model_version:
            server.call("updating the project's model version", server.client.projects.update, id=project_id,
                        model_version=model_version)
    return len(new), len(tasks) - len(new)
