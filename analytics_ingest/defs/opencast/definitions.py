"""Opencast harvesting, present when ``OPENCAST_URL`` is set. The embedded default (no
``OPENCAST_URL`` nor ``CLOUDWATCH_SITES``, the bundled sites file) reads a recorded day of user
actions from ``analytics_ingest/demo`` instead (``OPENCAST_URL=file:<demo folder>``, events to the
demo site), offline, without the every-2-minutes incremental harvest."""


import dagster as dg

from ..location import current_location
from ..site_day import yesterday_schedule
from .assets import EPISODES, MATOMO_EVENTS, USERACTIONS, build_opencast_assets
from .schedules import build_opencast_harvest_job, build_opencast_harvest_schedule


@dg.definitions
def opencast() -> dg.Definitions:
    plan = current_location().opencast
    if plan is None:
        return dg.Definitions()
    assets = build_opencast_assets(plan)
    keys = [a.key for a in assets]
    daily = dg.define_asset_job(
        name="opencast_daily",
        selection=dg.AssetSelection.assets(*[k for k in (USERACTIONS, EPISODES, MATOMO_EVENTS) if k in keys]),
        description="Harvest a whole day of user actions and episodes (backfills, or re-delivery of a day).",
    )
    # The incremental harvest feeds SQS as actions happen; the whole day is harvested again once it
    # is over, which fills its journal and Parquet files and sends its Matomo events exactly once.
    nightly = yesterday_schedule(
        plan, daily, name="opencast_daily_yesterday", cron="0 3 * * *",
        description=f"Every night at 03:00 ({plan.timezone}), harvest yesterday's user actions and episodes "
                    "whole and send its Matomo events.")
    if plan.demo:  # a recorded day has nothing new every 2 minutes
        return dg.Definitions(assets=assets, jobs=[daily], schedules=[nightly])
    harvest = build_opencast_harvest_job()
    return dg.Definitions(assets=assets, jobs=[daily, harvest],
                          schedules=[build_opencast_harvest_schedule(harvest, plan.harvest_cron), nightly])
