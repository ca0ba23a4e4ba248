"""Opencast harvesting, present when ``OPENCAST_URL`` is set. The embedded default (no
``OPENCAST_URL`` nor ``CLOUDWATCH_SITES``, the bundled sites file) reads a recorded day of user
actions from ``analytics_ingest/demo`` instead (``OPENCAST_URL=file:<demo folder>``, events to the
demo site), offline, without the every-2-minutes incremental harvest."""


import datetime as dt
import os
from typing import NamedTuple

import dagster as dg

from ...demo import is_offline_demo, opencast_environ
from ...opencast.daily import matomo_site
from ..weblogs.schedules import yesterday_schedule
from .assets import EPISODES, MATOMO_EVENTS, USERACTIONS, build_opencast_assets
from .schedules import opencast_harvest_job, opencast_harvest_schedule


def opencast_environment():
    """The settings the Opencast assets run with (the recorded demo's or the real ones), or None
    when the code location has no Opencast."""
    if os.environ.get("OPENCAST_URL"):
        return os.environ
    return opencast_environ() if is_offline_demo() else None


def opencast_events_dep(site):
    """The dependency of ``site``'s assets on the Opencast events delivered to it, or None.

    Opencast's days are the server's (OPENCAST_TIMEZONE); when that is the site's zone the days
    map as time windows, otherwise by date (a Dagster time-window mapping cannot cross zones)."""
    env = opencast_environment()
    if env is None or matomo_site(env) != site.id:
        return None
    if env.get("OPENCAST_TIMEZONE", "UTC") == site.timezone:
        return dg.AssetDep(MATOMO_EVENTS)
    return dg.AssetDep(MATOMO_EVENTS, partition_mapping=dg.IdentityPartitionMapping())


@dg.definitions
def opencast() -> dg.Definitions:
    env = opencast_environment()
    if env is None:
        return dg.Definitions()
    demo = not os.environ.get("OPENCAST_URL")
    assets = build_opencast_assets(opencast_environ if demo else None)
    keys = [a.key for a in assets]
    daily = dg.define_asset_job(
        name="opencast_daily",
        selection=dg.AssetSelection.assets(*[k for k in (USERACTIONS, EPISODES, MATOMO_EVENTS) if k in keys]),
        description="Harvest a whole day of user actions and episodes (backfills, or re-delivery of a day).",
    )
    # The incremental harvest feeds SQS as actions happen; the whole day is harvested again once it
    # is over, which fills its journal and Parquet files and sends its Matomo events exactly once.
    calendar = OpencastCalendar(key="opencast", timezone=env.get("OPENCAST_TIMEZONE", "UTC"),
                                start_date=dt.date.fromisoformat(env.get("OPENCAST_START_DATE", "2024-01-01")))
    nightly = yesterday_schedule(
        calendar, daily, name="opencast_daily_yesterday", cron="0 3 * * *",
        description=f"Every night at 03:00 ({calendar.timezone}), harvest yesterday's user actions and episodes "
                    "whole and send its Matomo events.")
    if demo:  # a recorded day has nothing new every 2 minutes
        return dg.Definitions(assets=assets, jobs=[daily], schedules=[nightly])
    return dg.Definitions(assets=assets, jobs=[daily, opencast_harvest_job],
                          schedules=[opencast_harvest_schedule, nightly])


class OpencastCalendar(NamedTuple):
    """The Opencast server's days, in the shape the day schedules read from a site."""

    key: str
    timezone: str
    start_date: dt.date
