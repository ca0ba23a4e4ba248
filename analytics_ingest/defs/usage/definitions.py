"""Usage reports per configured site, with a job and a morning schedule for yesterday."""


import dagster as dg

from ...sites import load_sites
from ..cloudwatch.assets import replay_key
from ..cloudwatch.definitions import replay_sites
from ..opencast.definitions import opencast_events_dep
from ..weblogs.schedules import yesterday_schedule
from .assets import build_usage_assets, usage_key


@dg.definitions
def usage() -> dg.Definitions:
    assets, jobs, schedules = [], [], []
    replayed_keys = {s.key for s in replay_sites()[1]}
    for site in load_sites():
        # The reports count every hit delivered to the day: replayed tracker requests and Opencast events too.
        extra = [replay_key(site)] if site.key in replayed_keys else []
        if (events := opencast_events_dep(site)) is not None:
            extra.append(events)
        assets += build_usage_assets(site, extra)
        job = dg.define_asset_job(name=f"{site.key}_usage_reports", selection=dg.AssetSelection.assets(usage_key(site)),
                                  description=f"Usage reports of {site.name} for a day.")
        jobs.append(job)
        schedules.append(yesterday_schedule(
            site, job, name=f"{site.key}_usage_reports_daily", cron="0 6 * * *",
            description=f"Every morning at 06:00 ({site.timezone}), yesterday's usage reports of {site.name}."))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
