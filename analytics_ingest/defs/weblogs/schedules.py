"""Schedules: pull logs with rsync every hour; import yesterday of every site every night."""


import datetime as dt
import os
from zoneinfo import ZoneInfo

import dagster as dg

from ...weblogs.rsync import run_pull_commands
from ..resources import IngestResource

RSYNC_CRON = os.environ.get("ANALYTICS_INGEST_RSYNC_CRON", "5 * * * *")  # EEA pulled hourly at :05
RSYNC_TIMEOUT = float(os.environ.get("ANALYTICS_INGEST_RSYNC_TIMEOUT", "900"))
# An import run fails when a day of it is not Loaded yet (files still to come): retrying it at once
# (run_retries in deploy/dagster.yaml) cannot make the day Loaded and only adds a second failed run.
# The file that completes the day asks for it again (sensor), and "failed and missing" backfills
# pick up what is left. Runs that die outside a step (a crashed process) are still retried.
NO_RETRY_ON_STEP_FAILURE = {"dagster/retry_on_asset_or_op_failure": "false"}


@dg.op(description="Runs each site's configured rsync pull commands with a timeout; output is kept in the run's logs.")
def rsync_pull(context: dg.OpExecutionContext, ingest: IngestResource) -> None:
    failures = []
    for site in ingest.sites():
        for result in run_pull_commands(site.rsync_commands, timeout=RSYNC_TIMEOUT):
            text = f"{site.key}: `{result.command}` exit {result.returncode} in {result.seconds:.1f} s"
            if result.timed_out:
                text += " (timed out)"
            context.log.info(text + ("\n" + result.output[-4000:] if result.output else ""))
            if result.timed_out or result.returncode != 0:
                failures.append(text)
    if failures:
        raise dg.Failure(description=f"{len(failures)} rsync command(s) failed", metadata={"failures": "\n".join(failures)})


@dg.job(description="Pull the access logs of every site with its rsync commands (EEA's RSYNC_COMMANDS).")
def rsync_pull_job():
    rsync_pull()


rsync_schedule = dg.ScheduleDefinition(
    name="rsync_pull_hourly",
    job=rsync_pull_job,
    cron_schedule=RSYNC_CRON,
    default_status=dg.DefaultScheduleStatus.STOPPED,  # the demo has no remote to pull from
    description="Runs the rsync pull commands (cron from ANALYTICS_INGEST_RSYNC_CRON, default hourly at :05).",
)


def yesterday_schedule(site, job, *, name: str, cron: str, description: str,
                       tags: dict[str, str] | None = None) -> dg.ScheduleDefinition:
    """A schedule in the site's timezone that asks ``job`` for the site's yesterday (runs tagged ``tags``)."""

    @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=site.timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def daily(context: dg.ScheduleEvaluationContext):
        local = context.scheduled_execution_time.astimezone(ZoneInfo(site.timezone))
        yesterday = (local.date() - dt.timedelta(days=1)).isoformat()
        if yesterday < site.start_date.isoformat():
            return dg.SkipReason(f"{yesterday} is before {site.key}'s start date")
        return dg.RunRequest(run_key=f"{name}:{yesterday}", partition_key=yesterday, tags=tags)

    return daily


def build_daily_schedule(site, job) -> dg.ScheduleDefinition:
    return yesterday_schedule(
        site, job, name=f"{site.key}_daily_import", cron="30 0 * * *",
        description=f"Every night at 00:30 ({site.timezone}), queue and import yesterday for {site.name}.",
        tags=NO_RETRY_ON_STEP_FAILURE)
