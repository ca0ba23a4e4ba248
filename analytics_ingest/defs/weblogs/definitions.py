"""Everything of the web-log pipeline, per configured site, and the rsync pull of all of them."""


import dagster as dg

from ..location import current_location
from ..site_day import NO_RETRY_ON_STEP_FAILURE
from .assets import build_site_assets, files_key, import_key
from .schedules import build_daily_schedule, build_rsync_pull_job, build_rsync_schedule
from .sensors import build_log_sensor


def site_job(site):
    return dg.define_asset_job(
        name=f"{site.key}_import",
        selection=dg.AssetSelection.assets(files_key(site), import_key(site)),
        # A failed day is waiting for files: a run retry cannot make it Loaded.
        tags=NO_RETRY_ON_STEP_FAILURE,
        description=f"Queue and import days of {site.name} (Matomo site {site.id}).",
    )


@dg.definitions
def weblogs() -> dg.Definitions:
    location = current_location()
    rsync_job = build_rsync_pull_job()
    assets, jobs, sensors, schedules = [], [rsync_job], [], [build_rsync_schedule(rsync_job, location.rsync_cron)]
    for site in location.sites:
        assets += build_site_assets(site)
        job = site_job(site)
        jobs.append(job)
        sensors.append(build_log_sensor(site, job))
        schedules.append(build_daily_schedule(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors, schedules=schedules)
