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

from ..columns import encoded, per_value
from ..config import ENV_GEOIP_DB
from ..errors import ConfigError
from ..matomo.exclusions import MatomoExclusions
from ..matomo.tracking import RequestBuilder
from .agents import AgentFacts
from .matomo_rules import DEFAULT_RULES, UrlRules, pretable_action_name, pretable_browser
from .schema import parquet_schema

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


class HitRows:
    """Tables of hits (columns of :mod:`~analytics_ingest.weblogs.hit_store`) -> pretable tables
    (:func:`~.schema.parquet_schema`), leaving out the hits Matomo drops although it answers them
    as tracked: a DeviceDetector bot or a bot IP range, unless every request carried ``bots=1``
    (``bots_sent``: the site's ``enable_bots``), and the hits our classifier called bots.

    Columnar: every rule runs once per distinct agent, address or URL, cached across the day."""

    COLUMNS = ("time", "ip", "user_agent", "host", "path", "download", "bot")

    def __init__(self, main_url: str, geo: GeoLocator | None, *, bots_sent: bool = False,
                 agents: AgentFacts | None = None, rules: UrlRules = DEFAULT_RULES) -> None:
        self._base = RequestBuilder(0, main_url, pv_ids=None).url_of  # the URL the import sent, as it sent it
        self._rules = rules  # the site's URL settings in Matomo
        self.agents = agents if agents is not None else AgentFacts()
        self._exclusions = MatomoExclusions()
        self._geo = geo
        self._bots_sent = bots_sent
        self._addresses: dict = {}
        self._actions: dict = {}
        self.robots_excluded = 0  # hits our classifier called bots (tracked with enable_bots)

    def _agent(self, agent: str) -> tuple:
        """(dropped as a bot or excluded agent, browserName, browserVersion)."""
        is_bot, label, version = self.agents(agent)
        dropped = not self._bots_sent and (is_bot or self._exclusions.agent_excluded(agent))
        name, version = pretable_browser(label, version)
        return dropped, name, version

    def _address(self, ip: str) -> tuple:
        """(dropped by Matomo's IP rules, latitude, longitude)."""
        in_bot_range, in_excluded_ips = self._exclusions.ip_kind(ip)
        dropped = not self._bots_sent and (in_bot_range or in_excluded_ips)
        lat, lon = self._geo(ip) if self._geo is not None else (None, None)
        return dropped, lat, lon

    def _action_names(self, hits):
        """actionName per row: Matomo's URL rules once per distinct (download, host, path), found
        from the columns' dictionary indices without building a key string per row."""
        import numpy as np
        import pyarrow as pa

        host, path = encoded(hits.column("host")), encoded(hits.column("path"))
        hosts, paths = host.dictionary.to_pylist(), path.dictionary.to_pylist()
        codes = ((path.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(hosts)
                  + host.indices.to_numpy(zero_copy_only=False)) * 2
                 + hits.column("download").to_numpy().astype(np.int64))
        distinct, rows = np.unique(codes, return_inverse=True)
        cache, names = self._actions, []
        for code in distinct.tolist():
            download, rest = code & 1, code >> 1
            key = (download, hosts[rest % len(hosts)], paths[rest // len(hosts)])
            name = cache.get(key, False)
            if name is False:
                found = self._rules.action(self._base(key[1], key[2]), download=bool(download))
                name = None if found is None else pretable_action_name(*found)
                if len(cache) >= 200_000:  # memory stays flat on days of unique URLs
                    cache.clear()
                cache[key] = name
            names.append(name)
        return pa.array(names, pa.string()).take(pa.array(rows.reshape(-1)))

    def table(self, hits):
        """The pretable rows of ``hits``, in their order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        bots = hits.column("bot")
        self.robots_excluded += pc.sum(bots).as_py() or 0
        hits = hits.filter(pc.invert(bots))
        if not hits.num_rows:
            return pa.Table.from_batches([], schema=parquet_schema())
        # no cache of its own: AgentFacts already remembers each agent, across days too
        agent_dropped, browser, version = per_value(hits.column("user_agent"), self._agent,
                                                    [pa.bool_(), pa.string(), pa.string()])
        ip_dropped, lat, lon = per_value(hits.column("ip"), self._address,
                                         [pa.bool_(), pa.float64(), pa.float64()], self._addresses)
        name = self._action_names(hits)
        keep = pc.and_(pc.invert(pc.or_(agent_dropped, ip_dropped)), pc.is_valid(name))
        columns = [hits.column("time"), browser, version, hits.column("ip").cast(pa.string()), lat, lon, name]
        return pa.Table.from_arrays(columns, schema=parquet_schema()).filter(keep)
