"""Pretable rows from the hits this project delivered (no Matomo database needed).

Each row is what the ``matomo_db`` source reads for the same hit (the row definition is in
:mod:`.schema`): the request we sent (``url`` or ``download``, as :mod:`..matomo.tracking`
renders it) goes through Matomo's tracker rules (:mod:`.matomo_rules`: parameters stripped,
site-search keyword, downloads kept whole) and the user agent through DeviceDetector's client
parsers, then both through the same last step as Matomo's stored values. Hits Matomo drops
although it counts them as tracked (a DeviceDetector bot or one of the built-in bot IP ranges,
sent without ``bots=1``) are left out, as the hits our classifier called bots.

* latitude/longitude: a MaxMind-format database (GeoLite2/GeoIP2 City, DB-IP, IPinfo...) when
  ``ANALYTICS_INGEST_GEOIP_DB`` names one, else NULL -- as Matomo without a geolocation provider.

"""

from __future__ import annotations

from typing import Callable

from ..config import ENV_GEOIP_DB
from ..errors import ConfigError
from ..hits import Hit
from ..matomo.exclusions import MatomoExclusions
from ..matomo.tracking import RequestBuilder
from ..vocabulary import DOWNLOADS
from .matomo_rules import MatomoBrowsers, matomo_action, pretable_action_name, pretable_browser

CACHE_LIMIT = 100_000


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


def row_maker(main_url: str, geo: GeoLocator | None, *, bots_sent: bool = False) -> Callable[[Hit, str], tuple | None]:
    """A function (hit, category) -> pretable row, or None for a hit Matomo drops although it
    answers it as tracked: a DeviceDetector bot or a bot IP range, unless every request carried
    ``bots=1`` (``bots_sent``: the site's ``enable_bots``). Every lookup is cached."""
    sent_url = RequestBuilder(0, main_url, pv_ids=None).url  # the URL the import sent, as it sent it
    browsers = MatomoBrowsers()
    is_bot = browsers.is_bot
    dropped = MatomoExclusions()
    actions: dict[tuple[str, bool], str | None] = {}

    def make(hit: Hit, category: str) -> tuple | None:
        agent = hit.user_agent
        if not bots_sent and (is_bot(agent) or dropped.reason(hit.ip, agent, False) is not None):
            return None
        download = category == DOWNLOADS
        url = sent_url(hit)
        key = (url, download)
        name = actions.get(key, False)
        if name is False:
            found = matomo_action(url, download=download)
            name = None if found is None else pretable_action_name(*found)
            if len(actions) >= CACHE_LIMIT:
                actions.clear()
            actions[key] = name
        if name is None:
            return None
        browser, version = pretable_browser(*browsers(agent))
        lat, lon = geo(hit.ip) if geo is not None else (None, None)
        return (hit.cdt, browser, version, hit.ip, lat, lon, name)

    return make
