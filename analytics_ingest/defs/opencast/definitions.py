"""Opencast harvesting, present when ``OPENCAST_URL`` is set (the embedded default has no Opencast)."""


import os

import dagster as dg

from .assets import EPISODES, MATOMO_EVENTS, USERACTIONS, build_opencast_assets
from .schedules import opencast_harvest_job, opencast_harvest_schedule


@dg.definitions
def opencast() -> dg.Definitions:
    if not os.environ.get("OPENCAST_URL"):
        return dg.Definitions()
    assets = build_opencast_assets()
    keys = [a.key for a in assets]
    daily = dg.define_asset_job(
        name="opencast_daily",
        selection=dg.AssetSelection.assets(*[k for k in (USERACTIONS, EPISODES, MATOMO_EVENTS) if k in keys]),
        description="Harvest a whole day of user actions and episodes (backfills, or re-delivery of a day).",
    )
    return dg.Definitions(assets=assets, jobs=[daily, opencast_harvest_job], schedules=[opencast_harvest_schedule])
