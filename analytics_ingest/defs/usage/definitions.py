"""Usage reports per configured site, with a job and a morning schedule for yesterday."""


import dagster as dg

from ..location import current_location
from ..site_day import yesterday_schedule
from ..upstream import hit_sources
from .assets import build_usage_assets, usage_key


@dg.definitions
def usage() -> dg.Definitions:
    location = current_location()
    assets, jobs, schedules = [], [], []
    for site in location.sites:
        # The reports count every hit delivered to the day: replayed tracker requests and Opencast events too.
        assets += build_usage_assets(site, hit_sources(location, site), location.usage)
        job = dg.define_asset_job(name=f"{site.key}_usage_reports", selection=dg.AssetSelection.assets(usage_key(site)),
                                  description=f"Usage reports of {site.name} for a day.")
        jobs.append(job)
        schedules.append(yesterday_schedule(
            site, job, name=f"{site.key}_usage_reports_daily", cron="0 6 * * *",
            description=f"Every morning at 06:00 ({site.timezone}), yesterday's usage reports of {site.name}."))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
