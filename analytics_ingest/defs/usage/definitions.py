"""Usage reports per configured site, with a job and a morning schedule for yesterday."""


import dagster as dg

from ...sites import load_sites
from ..weblogs.schedules import yesterday_schedule
from .assets import build_usage_assets, usage_key


@dg.definitions
def usage() -> dg.Definitions:
    assets, jobs, schedules = [], [], []
    for site in load_sites():
        assets += build_usage_assets(site)
        job = dg.define_asset_job(name=f"{site.key}_usage_reports", selection=dg.AssetSelection.assets(usage_key(site)),
                                  description=f"Usage reports of {site.name} for a day.")
        jobs.append(job)
        schedules.append(yesterday_schedule(
            site, job, name=f"{site.key}_usage_reports_daily", cron="0 6 * * *",
            description=f"Every morning at 06:00 ({site.timezone}), yesterday's usage reports of {site.name}."))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
