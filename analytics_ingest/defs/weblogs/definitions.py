"""Everything of the web-log pipeline, per configured site."""


import dagster as dg

from ...sites import load_sites
from .assets import build_site_assets, files_key, import_key
from .schedules import NO_RETRY_ON_STEP_FAILURE, build_daily_schedule, rsync_pull_job, rsync_schedule
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
    assets, jobs, sensors, schedules = [], [rsync_pull_job], [], [rsync_schedule]
    for site in load_sites():
        assets += build_site_assets(site)
        job = site_job(site)
        jobs.append(job)
        sensors.append(build_log_sensor(site, job))
        schedules.append(build_daily_schedule(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors, schedules=schedules)
