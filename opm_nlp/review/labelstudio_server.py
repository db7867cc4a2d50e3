"""The connection to a Label Studio server: checking its address and key, and every request made.

Only the server the user names is contacted, redirects are not followed, and the API key goes in a
request header and nowhere else: it is stripped of surrounding whitespace, refused before any request
if it holds a character a header cannot carry, and removed in every form (as typed, escaped, URL-encoded)
from any message. Errors of the Label Studio SDK and the network become one-line
:class:`~opm_nlp.exceptions.ServerError` messages saying what to fix.

Examples
--------
>>> server = connect("http://localhost:8080", api_key)  # doctest: +SKIP
>>> server.project_titles()                              # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from opm_nlp.exceptions import ReviewError, ServerError
from opm_nlp.review.labelstudio_config import DATA_ID

logger = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
# Label Studio tokens (40 hex digits, or a JWT) are visible ASCII; anything else cannot go in a header.
_TOKEN_CHAR = re.compile(r"[!-~]")
# Runs of visible characters this long inside a key are redacted on their own, whatever escaping
# surrounds them in a message (a repr of a repr, a log record of an exception).
_MIN_PIECE = 4


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
    if "@" in parts.netloc:  # credentials in the URL would be printed with it in every message
        raise ServerError(f"Label Studio URL must not hold a user name or password (user:secret@host); give "
                          f"only the address, e.g. http://localhost:8080, and the token in {KEY_ENV}.")
    return url.strip().rstrip("/")


def check_api_key(api_key: str | None) -> str:
    """Return the API key without surrounding whitespace, refusing one a request header cannot carry.

    A key read from a file with Windows line endings ends in ``\\r\\n``; stripped, it works. A key with
    a character inside that no token holds (a space, a line break, a non-ASCII letter) is refused here,
    before any request, naming the position but never the key.
    """
    key = (api_key or "").strip()
    if not key:
        raise ServerError(f"No Label Studio API key: set {KEY_ENV} to your access token "
                          f"(Label Studio: Account & Settings).")
    bad = next((i for i, char in enumerate(key) if not _TOKEN_CHAR.fullmatch(char)), None)
    if bad is not None:
        kind = "a space or line break" if key[bad].isspace() else "a character no token holds"
        raise ServerError(f"The API key in {KEY_ENV} / --api-key has {kind} at position {bad + 1} of {len(key)}; "
                          f"copy the access token again from Label Studio (Account & Settings).")
    return key


def key_forms(api_key: str) -> list[str]:
    """Every form in which a message could carry ``api_key``, longest first.

    The key as given and stripped; each as Python writes it inside a str or bytes repr, as JSON writes
    it, and URL-encoded; and each run of at least four visible characters of it on its own.
    """
    keys = {api_key, api_key.strip()}
    forms = set(keys)
    for key in keys:
        forms |= {repr(key)[1:-1], repr(key.encode("utf-8", "backslashreplace"))[2:-1], json.dumps(key)[1:-1],
                  quote(key, safe=""), quote_plus(key, safe="")}
        forms |= {piece for piece in re.findall(r"[!-~]+", key) if len(piece) >= _MIN_PIECE}
    return sorted((form for form in forms if form), key=len, reverse=True)


def redact(text: str, api_key: str | None) -> str:
    """``text`` with every form of ``api_key`` (see :func:`key_forms`) replaced by ``***``."""
    if not api_key:
        return text
    for form in key_forms(api_key):
        text = text.replace(form, "***")
    return text


def _is_local(url: str) -> bool:
    """True when the URL's host is this machine (``localhost`` or a loopback address)."""
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
        return redact(text, self._api_key)

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
            detail = self._redact(str(body))[:200]  # redacted before cutting, so no part of the key is left
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
        return self.task_values(project_id, DATA_ID)

    def task_values(self, project_id: int, key: str) -> set[str]:
        """The distinct values of one task-data field over a project's tasks (tasks without it left out)."""
        tasks = self.call("listing tasks",
                          lambda: list(self.client.tasks.list(project=project_id, fields="task_only", page_size=1000)))
        return {str(t.data.get(key)) for t in tasks if t.data and t.data.get(key) is not None}

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
    api_key = check_api_key(api_key)
    if url.startswith("http://") and not _is_local(url):
        logger.warning("sending the API key to %s over plain http; use https for a remote server", url)
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    try:
        # No redirects: the key must only ever go to the address the user named.
        client = LabelStudio(base_url=url, api_key=api_key, timeout=timeout, follow_redirects=False,
                             max_retries=1)
    except ApiError as exc:  # the SDK checks a JWT's expiry before any request
        detail = exc.body.get("detail") if isinstance(exc.body, dict) else "invalid"
        raise ServerError(redact(f"The API key in {KEY_ENV} is not usable: {detail}", api_key)) from None
    server = LabelStudioServer(client, url, api_key)
    server.call("checking the API key", client.users.whoami)
    return server
