"""A small client for Matomo's Reporting API (``index.php?module=API``).

Calls are POSTed as form data so the token travels in the body, never in a URL that a proxy or
access log could record. Error messages name the method, never the token.
"""

from __future__ import annotations

from dataclasses import dataclass


from ..errors import ConfigError


class MatomoApiError(Exception):
    """Matomo answered a Reporting API call with an error or something that is not JSON."""


@dataclass(frozen=True)
class SiteInfo:
    idsite: int
    name: str
    main_url: str
    timezone: str = "UTC"


class MatomoApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0, session=None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        import requests  # here, not at import: an offline run never loads it (~60 ms of start-up)

        self._requests = requests
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "analytics-ingest"

    def call(self, method: str, **params):
        data = {"module": "API", "format": "json", "method": method, "token_auth": self._token}
        data.update({k: v for k, v in params.items() if v is not None})
        try:
            response = self.session.post(f"{self.base_url}/index.php", data=data, timeout=self.timeout)
        except self._requests.RequestException as exc:
            raise MatomoApiError(f"{method}: cannot reach {self.base_url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise MatomoApiError(
                f"{method}: HTTP {response.status_code} with a non-JSON answer from {self.base_url}"
            ) from None
        if isinstance(body, dict) and body.get("result") == "error":
            raise MatomoApiError(f"{method}: {body.get('message', 'error')}")
        if response.status_code >= 400:
            raise MatomoApiError(f"{method}: HTTP {response.status_code}")
        return body

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
