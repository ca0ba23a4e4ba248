"""Usage reports per configured site, with a job and a morning schedule for yesterday."""


import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from ...sites import load_sites
from .assets import build_usage_assets, usage_key


def build_usage_schedule(site, job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{site.key}_usage_reports_daily",
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone=site.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every morning at 06:00 ({site.timezone}), yesterday's usage reports of {site.name}.",
    )
    def usage_daily(context: dg.ScheduleEvaluationContext):
        local = context.scheduled_execution_time.astimezone(ZoneInfo(site.timezone))
        yesterday = (local.date() - dt.timedelta(days=1)).isoformat()
        if yesterday < site.start_date.isoformat():
            return dg.SkipReason(f"{yesterday} is before {site.key}'s start date")
        return dg.RunRequest(run_key=f"{site.key}:usage:{yesterday}", partition_key=yesterday)

    return usage_daily


@dg.definitions
def usage() -> dg.Definitions:
    assets, jobs, schedules = [], [], []
    for site in load_sites():
        assets += build_usage_assets(site)
        job = dg.define_asset_job(name=f"{site.key}_usage_reports", selection=dg.AssetSelection.assets(usage_key(site)),
                                  description=f"Usage reports of {site.name} for a day.")
        jobs.append(job)
        schedules.append(build_usage_schedule(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
