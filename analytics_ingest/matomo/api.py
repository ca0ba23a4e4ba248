"""A small client for Matomo's Reporting API (``index.php?module=API``).

Calls are POSTed as form data so the token travels in the body, never in a URL that a proxy or
access log could record. Error messages name the method, never the token.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from ..errors import ConfigError

_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "analytics-ingest"}


class MatomoApiError(Exception):
    """Matomo answered a Reporting API call with an error or something that is not JSON."""


@dataclass(frozen=True)
class SiteInfo:
    idsite: int
    name: str
    main_url: str
    timezone: str = "UTC"


class MatomoApi:
    """Reporting API calls over ``http.client``, one keep-alive connection per thread (the lanes'
    settling look-ups run in the lane threads), like the tracking client: loading a full HTTP
    library cost ~60 ms of every import's start. Redirects are not followed, as the tracking
    client does not follow them: a MATOMO_URL that redirects is reported, with where it points."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path = parts.path + "/index.php"
        self._local = threading.local()

    def _post(self, body: bytes) -> tuple[int, str | None, bytes]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._local.conn = conn_class(self._netloc, timeout=self.timeout)
        try:
            conn.request("POST", self._path, body, _HEADERS)
            response = conn.getresponse()
            data = response.read()
            if response.will_close:
                conn.close()
            return response.status, response.getheader("Location"), data
        except BaseException:
            conn.close()  # a half-read answer must not be mistaken for the next call's
            raise

    def call(self, method: str, **params):
        data = {"module": "API", "format": "json", "method": method, "token_auth": self._token}
        data.update({k: v for k, v in params.items() if v is not None})
        body = urlencode(data).encode("ascii")
        try:
            try:
                status, location, answer = self._post(body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                status, location, answer = self._post(body)  # a keep-alive connection the server had closed
        except (OSError, http.client.HTTPException, UnicodeError) as exc:
            raise MatomoApiError(f"{method}: cannot reach {self.base_url}: {type(exc).__name__}") from None
        if 300 <= status < 400:
            where = f" to {location[:200]}" if location else ""
            raise MatomoApiError(f"{method}: cannot reach {self.base_url}: HTTP {status} redirect{where}; "
                                 "set MATOMO_URL to Matomo's own address")
        try:
            result = json.loads(answer)
        except ValueError:
            raise MatomoApiError(
                f"{method}: HTTP {status} with a non-JSON answer from {self.base_url}"
            ) from None
        if isinstance(result, dict) and result.get("result") == "error":
            raise MatomoApiError(f"{method}: {result.get('message', 'error')}")
        if status >= 400:
            raise MatomoApiError(f"{method}: HTTP {status}")
        return result

    def site(self, idsite: int) -> SiteInfo:
        """The site's name, main URL and timezone; fails fast with a one-line ConfigError."""
        try:
            body = self.call("SitesManager.getSiteFromId", idSite=idsite)
        except MatomoApiError as exc:
            text = str(exc)
            if "cannot reach" in text or "non-JSON" in text:
                raise ConfigError(
                    f"Matomo is not reachable at {self.base_url} ({text.split(': ', 1)[1]}); check MATOMO_URL"
                ) from None
            raise ConfigError(
                f"Matomo refused site {idsite}: {text.split(': ', 1)[1]} — check the site id and that "
                "MATOMO_API_TOKEN has write access to it"
            ) from None
        if not isinstance(body, dict) or "idsite" not in body:
            raise ConfigError(f"Matomo has no site {idsite}; check --site")
        return SiteInfo(
            idsite=int(body["idsite"]),
            name=str(body.get("name", "")),
            main_url=str(body.get("main_url", "")),
            timezone=str(body.get("timezone", "UTC") or "UTC"),
        )
