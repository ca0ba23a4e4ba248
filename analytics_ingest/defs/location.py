"""What this code location holds, read from the environment once per load.

Which assets *exist* is decided when the code location loads (CloudWatch assets only for the sites
it covers, Opencast only when configured or in the offline demo), so the environment has to be read
then. It is read here, once: :func:`read_location` builds one :class:`Location`, the top-level
``definitions.py`` makes it current for the duration of the load, and every ``defs/*/definitions.py``
and ``defs/resources.py`` takes its sites and settings from it instead of the environment. The
sites file is parsed once, and the resources are pointed at the same file, so they cannot disagree.

No Dagster import: this is the shell's reading of configuration, testable on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from ..cloudwatch.pipeline import CloudwatchConfig
from ..demo import cloudwatch_environ, is_offline_demo, opencast_environ
from ..opencast.settings import ENV_MATOMO_SITE as ENV_OPENCAST_MATOMO_SITE
from ..opencast.settings import ENV_TIMEZONE as ENV_OPENCAST_TIMEZONE
from ..opencast.settings import ENV_URL as ENV_OPENCAST_URL
from ..opencast.settings import parse_matomo_site
from ..sites import ENV_SITES, SiteConfig, demo_sites_path, load_sites
from ..usage.settings import UsageSettings
from ..weblogs.rsync import ENV_CRON as ENV_RSYNC_CRON

ENV_HARVEST_CRON = "OPENCAST_HARVEST_CRON"
ENV_OPENCAST_START = "OPENCAST_START_DATE"
DEFAULT_RSYNC_CRON = "5 * * * *"  # EEA pulled hourly at :05
DEFAULT_HARVEST_CRON = "*/2 * * * *"  # Harvard DCE harvested every 2 minutes


@dataclass(frozen=True)
class OpencastPlan:
    """The Opencast server this location harvests: the real one or the recorded demo."""

    environ: Mapping[str, str]  # the OPENCAST_* settings the assets run with
    demo: bool  # the recorded day: no incremental harvest (nothing new every 2 minutes)
    timezone: str  # the server's days
    start_date: dt.date
    matomo_site: int | None  # the site receiving the actions as Matomo events
    harvest_cron: str

    # The shape the day schedules read from a site.
    key = "opencast"


@dataclass(frozen=True)
class Location:
    environ: Mapping[str, str]  # the snapshot every decision below was taken from
    sites_file: Path
    sites: tuple[SiteConfig, ...]
    cloudwatch: CloudwatchConfig | None  # None: no site is replayed from CloudWatch
    opencast: OpencastPlan | None  # None: no Opencast assets
    usage: UsageSettings  # the report windows, where Opencast's actions are
    rsync_cron: str

    def replayed(self, site: SiteConfig) -> bool:
        return self.cloudwatch is not None and self.cloudwatch.covers(site)

    @property
    def replayed_sites(self) -> list[SiteConfig]:
        return [site for site in self.sites if self.replayed(site)]

    def opencast_events_for(self, site: SiteConfig) -> bool:
        return self.opencast is not None and self.opencast.matomo_site == site.id


def read_location(environ: Mapping[str, str] | None = None) -> Location:
    """Everything the code location's shape depends on, from ``environ`` (default: the process's)."""
    env = dict(os.environ if environ is None else environ)
    sites_file = Path(os.path.abspath(os.path.expanduser(env.get(ENV_SITES) or demo_sites_path())))
    sites = tuple(load_sites(sites_file))
    demo = is_offline_demo(env)
    cloudwatch = CloudwatchConfig.from_env(cloudwatch_environ(env) if demo else env)
    return Location(
        environ=env,
        sites_file=sites_file,
        sites=sites,
        cloudwatch=cloudwatch if any(cloudwatch.covers(s) for s in sites) else None,
        opencast=_opencast(env, demo),
        usage=UsageSettings.from_env(env),
        rsync_cron=env.get(ENV_RSYNC_CRON) or DEFAULT_RSYNC_CRON,
    )


def _opencast(env: Mapping[str, str], demo: bool) -> OpencastPlan | None:
    if env.get(ENV_OPENCAST_URL):
        settings, recorded = env, False
    elif demo:
        settings, recorded = opencast_environ(env), True
    else:
        return None
    return OpencastPlan(
        environ=settings,
        demo=recorded,
        timezone=settings.get(ENV_OPENCAST_TIMEZONE) or "UTC",
        start_date=dt.date.fromisoformat(settings.get(ENV_OPENCAST_START) or "2024-01-01"),
        matomo_site=parse_matomo_site(settings.get(ENV_OPENCAST_MATOMO_SITE)),
        harvest_cron=env.get(ENV_HARVEST_CRON) or DEFAULT_HARVEST_CRON,
    )


_CURRENT: ContextVar[Location | None] = ContextVar("analytics_ingest_location", default=None)


@contextlib.contextmanager
def loading(location: Location) -> Iterator[Location]:
    """Make ``location`` the one every defs module reads while the defs folder loads."""
    token = _CURRENT.set(location)
    try:
        yield location
    finally:
        _CURRENT.reset(token)


def current_location() -> Location:
    """The location being loaded; a defs module loaded on its own (a test, a tool) reads the environment."""
    location = _CURRENT.get()
    return location if location is not None else read_location()
