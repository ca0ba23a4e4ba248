"""Wiring shared by the CLI and the Dagster layer: settings → ledger, site, sink, importer."""

from __future__ import annotations

import dataclasses

from .config import Settings
from .errors import ConfigError
from .matomo.api import MatomoApi, SiteInfo
from .matomo.delivery import HttpSink, OutboxSink
from .matomo.lookup import ApiLookup, MysqlLookup
from .matomo.retry import RetryPolicy
from .site_time import site_zone
from .weblogs.day_hits import hit_store_dir
from .weblogs.importer import Importer

OFFLINE_MAIN_URL = "https://example.org"


def open_ledger(settings: Settings):
    from .ledger import Ledger

    if settings.ledger_url.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    return Ledger(settings.ledger_url, destination=settings.destination)


def resolve_site_and_sink(settings: Settings, site_id: int, policy: RetryPolicy | None = None):
    """Check Matomo (reachable, token valid, site exists) before any hit is sent."""
    if settings.offline:
        site = SiteInfo(idsite=site_id, name=f"site {site_id}", main_url=OFFLINE_MAIN_URL)
        return site, OutboxSink(settings.outbox_dir, site_id)
    api = MatomoApi(settings.matomo_url, settings.matomo_token)
    site = api.site(site_id)
    if settings.matomo_db_url:
        lookup = MysqlLookup(settings.matomo_db_url, site_id, settings.matomo_db_prefix)
    else:
        lookup = ApiLookup(api, site_id)
    return site, HttpSink(settings.matomo_url, settings.matomo_token, lookup, policy)


def make_importer(settings: Settings, ledger, site_id: int, *, policy=None, progress=None, lease_wait=0.0,
                  parallel=True, lease_ttl=None, timezone: str | None = None, site_wait: float | None = None,
                  on_site_wait=None):
    """An importer for one site. ``timezone``: the site's timezone from the sites file, which
    names its days everywhere (ledger, metadata, partitions); without it, Matomo's (UTC offline).
    ``site_wait``: seconds to wait for another Matomo writer of the site (None: as long as it takes)."""
    if getattr(ledger, "destination", settings.destination) != settings.destination:
        raise ValueError(f"the ledger is opened for {ledger.destination}, not {settings.destination}")
    site, sink = resolve_site_and_sink(settings, site_id, policy)
    if timezone:
        if not settings.offline and _zone_name(site.timezone) != _zone_name(timezone):
            raise ConfigError(
                f"site {site_id}: the sites file says timezone {timezone} but Matomo's site {site_id} is in "
                f"{site.timezone}; a day must be the same day in both — set the same timezone in the sites file "
                "and in Matomo (Administration > Websites > Manage)"
            )
        site = dataclasses.replace(site, timezone=timezone)
    site_zone(site.timezone)  # a zone this cannot read is one line now, not a failure after hits were sent
    extra = {} if lease_ttl is None else {"lease_ttl": lease_ttl}
    return Importer(ledger, sink, site, progress=progress, lease_wait=lease_wait, parallel=parallel,
                    site_wait=site_wait, on_site_wait=on_site_wait,
                    parallel_min_bytes=settings.parallel_min_bytes, hit_store_dir=hit_store_dir(settings), **extra)


def _zone_name(name: str) -> str:
    return "UTC" if name in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "UTC+0", "UTC0") else name
