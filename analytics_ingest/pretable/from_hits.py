"""Pretable rows from the hits this project delivered (no Matomo database needed).

* browser: the ``ua-parser`` library (the maintained uap-core regexes), family and major.minor
  version, cached per user agent because a day repeats a few thousand agents millions of times.
  An agent ua-parser cannot name (family ``Other``: ``Turnitin (...)``, ``PHP/8.2``, ``gvfs/1.5``)
  is written whole as browserName, with no version, so that COUNTER's robot and machine patterns,
  which are written for user agents, still find it in ``counter_metrics`` (a NULL name would
  count it as a human);
* latitude/longitude: a MaxMind-format database (GeoLite2/GeoIP2 City, DB-IP, IPinfo...) when
  ``ANALYTICS_INGEST_GEOIP_DB`` names one, else NULL -- as Matomo without a geolocation provider;
* actionName: the URL without scheme and without a leading ``www.``, as Matomo's ``log_action``
  stores it (the prefix lives in ``url_prefix``), so both sources give the same names.
"""

from __future__ import annotations

from typing import Callable

from ..config import ENV_GEOIP_DB
from ..errors import ConfigError
from ..hits import Hit

CACHE_LIMIT = 100_000


class BrowserNames:
    """user agent → (browserName, browserVersion), cached."""

    def __init__(self) -> None:
        from ua_parser import parse_user_agent

        self._parse = parse_user_agent
        self._cache: dict[str, tuple[str | None, str | None]] = {}

    def __call__(self, agent: str) -> tuple[str | None, str | None]:
        found = self._cache.get(agent)
        if found is None:
            ua = self._parse(agent) if agent else None
            if ua is None or not ua.family or ua.family == "Other":
                found = (agent or None, None)  # the user agent itself: see the module docstring
            else:
                version = ".".join(p for p in (ua.major, ua.minor) if p) or None
                found = (ua.family, version)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[agent] = found
        return found


class GeoLocator:
    """ip → (latitude, longitude) from a MaxMind-format database, cached; (None, None) if unknown."""

    def __init__(self, path: str) -> None:
        import maxminddb

        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{ENV_GEOIP_DB}={path} cannot be opened as a MaxMind database ({exc}); "
                              "point it at a .mmdb file such as GeoLite2-City.mmdb or unset it") from None
        self._cache: dict[str, tuple[float | None, float | None]] = {}

    def __call__(self, ip: str) -> tuple[float | None, float | None]:
        found = self._cache.get(ip)
        if found is None:
            try:
                record = self._reader.get(ip)
            except ValueError:  # not an IP address
                record = None
            location = record.get("location") if isinstance(record, dict) else None
            if isinstance(location, dict) and location.get("latitude") is not None:
                found = (float(location["latitude"]), float(location["longitude"]))
            else:
                found = (None, None)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[ip] = found
        return found

    def close(self) -> None:
        self._reader.close()


def open_geolocator(path: str | None) -> GeoLocator | None:
    """The settings' ``geoip_db`` opened, or None when there is none."""
    return GeoLocator(path) if path else None


def action_name(hit: Hit, default_host: str) -> str:
    host = (hit.host or default_host).lower()
    if host.startswith("www."):
        host = host[4:]
    path = hit.path
    if path[:1] not in ("/", ""):
        # absolute request target (proxy logs): keep what follows the scheme
        path = path.split("://", 1)[-1]
        return path[4:] if path.lower().startswith("www.") else path
    return host + path


def row_maker(default_host: str, geo: GeoLocator | None) -> Callable[[Hit], tuple]:
    """A function hit → pretable row, with every lookup cached."""
    browsers = BrowserNames()

    def make(hit: Hit) -> tuple:
        name, version = browsers(hit.user_agent)
        lat, lon = geo(hit.ip) if geo is not None else (None, None)
        return (hit.cdt, name, version, hit.ip, lat, lon, action_name(hit, default_host))

    return make
