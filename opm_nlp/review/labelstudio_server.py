"""The connection to a Label Studio server: checking its address and key, and every request made.

Only the server the user names is contacted, redirects are not followed, and the API key goes in a
request header and nowhere else (never in a message or log). Errors of the Label Studio SDK and the
network become one-line :class:`~opm_nlp.exceptions.ServerError` messages saying what to fix.

Examples
--------
>>> server = connect("http://localhost:8080", api_key)  # doctest: +SKIP
>>> server.project_titles()                              # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opm_nlp.exceptions import ReviewError, ServerError
from opm_nlp.review.labelstudio_config import DATA_ID

logger = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"


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
