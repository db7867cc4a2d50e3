"""Review in Label Studio: push suggestions as pre-annotated tasks, pull reviewers' codes back.

One Label Studio *project* holds one review: a task per answer, with the model's suggestion as a
pre-annotation (a prediction) that the reviewer confirms or corrects. The labeling interface is
generated from the codebook: a multi-select list of the codes with their labels and definitions,
child codes indented under their parent, and the include/exclude notes in a collapsible panel.

Only the server the user names is contacted; the API key goes in a request header and nowhere else
(never in a message or log).

Examples
--------
>>> server = connect("http://localhost:8080", api_key)                      # doctest: +SKIP
>>> push_tagged(server, tagged, codebook, "OPM wave 2022", model_version=mv)  # doctest: +SKIP
>>> result = pull_reviews(server, "OPM wave 2022", codebook)                  # doctest: +SKIP
>>> result.table.head()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import html
import ipaddress
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from opm_nlp.columns import SUGGESTED_COL, UNCERTAIN_COL
from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError, ServerError
from opm_nlp.columns import (
    CHANGED_COL,
    MODEL_VERSION_COL,
    REVIEWED_AT_COL,
    REVIEWED_COL,
    REVIEWER_COL,
)
from opm_nlp.model.reviewed import split_codes
from opm_nlp.review.common import UNCERTAINTY_COL, uncertainty

logger = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
#: Name of the code list in the labeling interface (``from_name`` of every result).
CHOICES_NAME = "codes"
#: Name of the answer text in the labeling interface (``to_name``).
TEXT_NAME = "text"
#: Task data keys. The response id is the key that makes pushing idempotent.
DATA_TEXT = "text"
DATA_ID = "response_id"
DATA_ID_COL = "id_col"
DATA_TEXT_COL = "text_col"
DATA_NOTE = "review_note"
IMPORT_BATCH = 500


# -- the labeling interface ------------------------------------------------------------------------
def _literal(text: str) -> str:
    """Text safe as a literal in a labeling config: Label Studio reads ``$name`` as a task field."""
    return re.sub(r"\$(?=[\w{\[])", "\uff04", text)  # fullwidth dollar sign looks the same


def label_config(codebook: Codebook) -> str:
    """The Label Studio labeling interface (XML) for reviewing suggestions against ``codebook``.

    A multi-select ``<Choices>`` whose values are the code ids (what exports and pre-annotations
    use) and whose display shows the label in bold and the definition beside it; the definition is
    also the hover hint. Codes are listed parent first, children indented under their parent. A
    collapsible panel below holds each code's include/exclude notes and examples.
    """
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Answer $" + DATA_ID, size="5")
    ET.SubElement(view, "Text", name=TEXT_NAME, value="$" + DATA_TEXT)
    ET.SubElement(view, "Header", value="$" + DATA_NOTE, size="6")
    ET.SubElement(view, "Header", value="Codes: tick every code that applies (the model's suggestion is "
                                         "pre-ticked; confirm or correct it, then submit)", size="5")
    choices = ET.SubElement(view, "Choices", name=CHOICES_NAME, toName=TEXT_NAME, choice="multiple")
    for code, depth in _tree_order(codebook):
        label = html.escape(_literal(code.label))
        definition = html.escape(_literal(code.definition))
        arrow = "&#8627; " if depth else ""
        attributes = {
            "value": code.id,
            "html": f"{arrow}<b>{label}</b> <span style=\"color:#666\">&#8212; {definition}</span>",
            "hint": _literal(code.definition),
        }
        if depth:
            attributes["style"] = f"margin-left: {1.75 * depth:g}em"
        ET.SubElement(choices, "Choice", attributes)
    panel = ET.SubElement(ET.SubElement(view, "Collapse"), "Panel",
                          value=f"Codebook notes: {_literal(codebook.name)} (include / exclude / examples)")
    for code, depth in _tree_order(codebook):
        ET.SubElement(panel, "Header", value=_literal(f"{code.label} ({code.id})"), size="6")
        ET.SubElement(panel, "Text", name=f"note_{code.id}", value=_literal(_notes(code)))
    return ET.tostring(view, encoding="unicode")


def _tree_order(codebook: Codebook) -> list:
    """Codes depth-first: each parent followed by its children, with their depth."""
    out = []

    def visit(parent, depth):
        for code in codebook.children(parent):
            out.append((code, depth))
            visit(code.id, depth + 1)

    visit(None, 0)
    return out


def _notes(code) -> str:
    parts = [code.definition]
    if code.include:
        parts.append(f"Include: {code.include}")
    if code.exclude:
        parts.append(f"Exclude: {code.exclude}")
    if code.examples:
        parts.append("Examples: " + " | ".join(code.examples))
    return "  ".join(parts)


def instructions_html(codebook: Codebook) -> str:
    """The codebook as HTML for the project's reviewer instructions."""
    items = []
    for code, depth in _tree_order(codebook):
        notes = "".join(f"<br/><i>{name}:</i> {html.escape(text)}"
                        for name, text in (("Include", code.include), ("Exclude", code.exclude)) if text)
        items.append(f"<li style=\"margin-left:{1.5 * depth:g}em\"><b>{html.escape(code.label)}</b> "
                     f"(<code>{code.id}</code>): {html.escape(code.definition)}{notes}</li>")
    return (f"<h3>{html.escape(codebook.name)}</h3><p>{html.escape(codebook.description)}</p>"
            f"<p>The model's suggested codes are pre-ticked. Tick every code that applies, untick the ones that "
            f"do not, then submit. Submitting unchanged confirms the suggestion.</p><ul>{''.join(items)}</ul>")


def codes_in_config(config: str) -> list[str]:
    """Code ids (``<Choice value>``) of the ``codes`` list in a labeling config, in order."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return []
    for element in root.iter("Choices"):
        if element.get("name") == CHOICES_NAME:
            return [choice.get("alias") or choice.get("value") for choice in element.iter("Choice")]
    return []


# -- connection ------------------------------------------------------------------------------------
def check_url(url: str | None) -> str:
    """Validate a Label Studio base URL and return it without a trailing slash."""
    if not url:
        raise ServerError(f"No Label Studio URL: set {URL_ENV} (e.g. http://localhost:8080) or pass --url.")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ServerError(f"Label Studio URL must look like http://localhost:8080; found {url!r}. "
                          f"Fix {URL_ENV} or --url.")
    if parts.query or parts.fragment:
        raise ServerError(f"Label Studio URL must be the server's address only (no ?query or #fragment); "
                          f"found {url!r}.")
    return url.strip().rstrip("/")


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LabelStudioServer:
    """A connection to one Label Studio server; every request goes through :meth:`call`.

    Build it with :func:`connect`. Errors of the SDK and the network become :class:`ServerError`
    with one line saying what to fix; the API key is removed from any text that reaches the user.
    """

    def __init__(self, client: Any, url: str, api_key: str):
        self.client = client
        self.url = url
        self._api_key = api_key

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def call(self, what: str, func: Callable, *args, **kwargs):
        """Run ``func(*args, **kwargs)`` (an SDK call described by ``what``), translating errors."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return func(*args, **kwargs)
        except httpx.TimeoutException:
            raise ServerError(f"Label Studio at {self.url} did not answer in time ({what}). Check that the "
                              f"server is running and reachable, or fix {URL_ENV} / --url.") from None
        except httpx.TransportError as exc:
            reason = self._redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise ServerError(f"Cannot reach Label Studio at {self.url} ({reason}). Start the server "
                              f"(label-studio start) or fix {URL_ENV} / --url.") from None
        except ApiError as exc:
            raise ServerError(self._redact(self._api_message(exc, what))) from None
        except ValueError as exc:  # JSON/pydantic: something answered, but not like Label Studio
            raise ServerError(f"The server at {self.url} did not answer like Label Studio ({what}: "
                              f"{self._redact(str(exc).splitlines()[0])}). Check {URL_ENV} / --url.") from None

    def _api_message(self, exc, what: str) -> str:
        status = exc.status_code
        if status in (401, 403):
            return (f"Label Studio at {self.url} refused the API key (HTTP {status}). Copy your access token "
                    f"from Label Studio (Account & Settings) into {KEY_ENV}.")
        if status is not None and 300 <= status < 400:
            location = (exc.headers or {}).get("location", "another address")
            return (f"Label Studio at {self.url} redirected to {location}; not following it. Set {URL_ENV} / "
                    f"--url to the server's own address.")
        body = exc.body
        if isinstance(body, dict):
            detail = body.get("validation_errors") or body.get("detail") or body
        else:
            detail = str(body)[:200]
        return f"Label Studio at {self.url} answered HTTP {status} to {what}: {detail}."

    # -- projects --------------------------------------------------------------------------------
    def find_project(self, title: str):
        """The project with exactly this title, or None. Several with that title is an error."""
        found = [p for p in self.call("listing projects", lambda: list(self.client.projects.list(title=title)))
                 if p.title == title]
        if len(found) > 1:
            raise ReviewError(f"{len(found)} projects on {self.url} are titled '{title}' (ids "
                              f"{[p.id for p in found]}); rename all but one in Label Studio.")
        return found[0] if found else None

    def project_titles(self) -> list[str]:
        """Titles of the projects this key can see."""
        return [p.title for p in self.call("listing projects", lambda: list(self.client.projects.list()))]

    def response_ids(self, project_id: int) -> set[str]:
        """Response ids already in a project (task data ``response_id``)."""
        tasks = self.call("listing tasks",
                          lambda: list(self.client.tasks.list(project=project_id, fields="task_only", page_size=1000)))
        return {str(t.data.get(DATA_ID)) for t in tasks if t.data and t.data.get(DATA_ID) is not None}

    def user_emails(self) -> dict[int, str]:
        """Map from user id to e-mail, for naming reviewers."""
        try:
            users = self.call("listing users", self.client.users.list)
        except ServerError as exc:  # a reviewer-role key may not list users; ids are still shown
            logger.info("cannot list users (%s); reviewers are shown by user id", exc)
            return {}
        return {u.id: u.email for u in users}


def connect(url: str | None, api_key: str | None, timeout: float = 30.0) -> LabelStudioServer:
    """Connect to Label Studio at ``url`` and check the API key.

    Parameters
    ----------
    url : str
        The server's base address, e.g. ``http://localhost:8080`` (from ``LABEL_STUDIO_URL``).
    api_key : str
        An access token (legacy token or personal access token), from ``LABEL_STUDIO_API_KEY``.
    timeout : float
        Seconds to wait for each request.

    Raises
    ------
    ServerError
        If the URL is malformed, the server cannot be reached, or it refuses the key.
    """
    url = check_url(url)
    if not api_key:
        raise ServerError(f"No Label Studio API key: set {KEY_ENV} to your access token "
                          f"(Label Studio: Account & Settings).")
    if url.startswith("http://") and not _is_local(url):
        logger.warning("sending the API key to %s over plain http; use https for a remote server", url)
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    try:
        # No redirects: the key must only ever go to the address the user named.
        client = LabelStudio(base_url=url, api_key=api_key, timeout=timeout, follow_redirects=False,
                             max_retries=1)
    except ApiError as exc:  # the SDK checks a JWT's expiry before any request
        raise ServerError(f"The API key in {KEY_ENV} is not usable: "
                          f"{exc.body.get('detail') if isinstance(exc.body, dict) else 'invalid'}") from None
    server = LabelStudioServer(client, url, api_key)
    server.call("checking the API key", client.users.whoami)
    return server


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
    tasks = []
    for i in order:
        row = tagged.iloc[i]
        text = str(row[text_col])
        if not text.strip():
            continue
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
        From :func:`connect`.
    tagged, scores
        From :func:`opm_nlp.review.common.read_tagged`.
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
        If the project exists with different codes.
    ServerError
        If the server refuses a request.
    """
    client = server.client
    existing = server.find_project(project)
    created = existing is None
    if created:
        config = label_config(codebook)
        existing = server.call(
            "creating the project", client.projects.create,
            title=project, label_config=config, model_version=model_version, show_collab_predictions=True,
            description=(f"Review of opm-nlp suggestions. Codebook '{codebook.name}' version "
                         f"{codebook.version or '-'}, fingerprint {codebook.fingerprint}."),
            expert_instruction=instructions_html(codebook), show_instruction=True,
        )
        project_id = existing.id
    else:
        project_id = existing.id
        _check_codes(server, project_id, project, codebook)
        if getattr(existing, "model_version", None) != model_version:
            # Label Studio pre-fills tasks with predictions of the project's model version.
            server.call("updating the project's model version", client.projects.update, id=project_id,
                        model_version=model_version)
    present = server.response_ids(project_id) if not created else set()
    tasks = build_tasks(tagged, scores, codebook, text_col, id_col, model_version, thresholds)
    empty = int(len(tagged) - len(tasks))
    new = [t for t in tasks if t["data"][DATA_ID] not in present]
    for start in range(0, len(new), IMPORT_BATCH):
        server.call("importing tasks", client.projects.import_tasks, id=project_id,
                    request=new[start:start + IMPORT_BATCH], return_task_ids=True)
    logger.info("project %s: %d tasks added, %d already present", project_id, len(new), len(tasks) - len(new))
    return PushResult(project_id=project_id, created_project=created, added=len(new),
                      already_there=len(tasks) - len(new), empty_skipped=empty,
                      url=f"{server.url}/projects/{project_id}/data")


def _check_codes(server: LabelStudioServer, project_id: int, project: str, codebook: Codebook) -> None:
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


def pull_reviews(server: LabelStudioServer, project: str, codebook: Codebook,
                 include_unreviewed: bool = False) -> PullResult:
    """Read reviewers' codes from a Label Studio project as a wide reviewed table.

    Each task's latest submitted (not skipped) annotation is the review. Output columns: the id and
    answer columns (named as in the pushed file), ``reviewed``, ``reviewer`` (e-mail),
    ``reviewed_at``, ``changed_suggestion`` (1 when the reviewer's codes differ from the model's),
    ``model_version``, ``suggested_codes``, then one 0/1 column per code id.

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
    _check_codes(server, found.id, project, codebook)
    export = server.call("exporting the project", server.client.projects.exports.as_json, found.id)
    emails = server.user_emails()
    index = {c: j for j, c in enumerate(codebook.ids)}
    rows, skipped, several, columns = [], 0, 0, set()
    for task in export:
        data = task.get("data") or {}
        if DATA_ID not in data:
            raise ReviewError(f"Task {task.get('id')} of project '{project}' has no '{DATA_ID}' in its data; "
                              f"the project holds tasks not pushed by opm-nlp review push.")
        columns.add((data.get(DATA_ID_COL, DATA_ID), data.get(DATA_TEXT_COL, DATA_TEXT)))
        where = f"project '{project}', task {task.get('id')} ({data[DATA_ID]})"
        suggested = split_codes(data.get(SUGGESTED_COL, ""), codebook, where)
        done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        skipped += int(not done and any(a.get("was_cancelled") for a in task.get("annotations") or []))
        codes = np.zeros(len(codebook), dtype=int)
        row = {"_id": str(data[DATA_ID]), "_text": data.get(DATA_TEXT, ""), REVIEWED_COL: int(bool(done)),
               REVIEWER_COL: "", REVIEWED_AT_COL: "", CHANGED_COL: 0,
               MODEL_VERSION_COL: data.get(MODEL_VERSION_COL, ""), SUGGESTED_COL: "; ".join(suggested)}
        if done:
            several += int(len(done) > 1)
            latest = max(done, key=lambda a: a.get("updated_at") or a.get("created_at") or "")
            chosen = _choices(latest, codebook, where)
            for code_id in chosen:
                codes[index[code_id]] = 1
            author = latest.get("completed_by")
            if isinstance(author, dict):
                author = author.get("email") or author.get("id")
            row[REVIEWER_COL] = emails.get(author, str(author or ""))
            row[REVIEWED_AT_COL] = latest.get("updated_at") or latest.get("created_at") or ""
            row[CHANGED_COL] = int(set(chosen) != set(suggested))
        elif include_unreviewed:
            for code_id in suggested:
                codes[index[code_id]] = 1
        else:
            continue
        row.update(zip(codebook.ids, codes.tolist()))
        rows.append(row)
    if len(columns) > 1:
        raise ReviewError(f"Project '{project}' mixes answers pushed with different id/text columns "
                          f"{sorted(columns)}; pull them into separate files from separate projects.")
    id_col, text_col = next(iter(columns)) if columns else (DATA_ID, DATA_TEXT)
    order = [REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL, CHANGED_COL, MODEL_VERSION_COL, SUGGESTED_COL]
    table = pd.DataFrame(rows, columns=["_id", "_text", *order, *codebook.ids])
    table = table.rename(columns={"_id": id_col, "_text": text_col}).sort_values(id_col, kind="stable")
    reviewed = sum(1 for t in export if any(not a.get("was_cancelled") for a in t.get("annotations") or []))
    return PullResult(table=table.reset_index(drop=True), id_col=id_col, text_col=text_col, tasks=len(export),
                      reviewed=reviewed, skipped=skipped, several_reviews=several, project_id=found.id)


def _choices(annotation: dict, codebook: Codebook, where: str) -> list[str]:
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
