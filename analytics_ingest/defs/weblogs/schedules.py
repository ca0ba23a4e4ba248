"""Schedules: pull logs with rsync every hour; import yesterday of every site every night."""


import dagster as dg

from ...weblogs.rsync import run_pull_commands
from ..resources import IngestResource, RsyncResource
from ..site_day import NO_RETRY_ON_STEP_FAILURE, yesterday_schedule


@dg.op(description="Runs each site's configured rsync pull commands with a timeout; output is kept in the run's logs.")
def rsync_pull(context: dg.OpExecutionContext, ingest: IngestResource, rsync: RsyncResource) -> None:
    failures = []
    for site in ingest.sites():
        for result in run_pull_commands(site.rsync_commands, timeout=rsync.timeout()):
            text = f"{site.key}: `{result.command}` exit {result.returncode} in {result.seconds:.1f} s"
            if result.timed_out:
                text += " (timed out)"
            context.log.info(text + ("\n" + result.output[-4000:] if result.output else ""))
            if result.timed_out or result.returncode != 0:
                failures.append(text)
    if failures:
        raise dg.Failure(description=f"{len(failures)} rsync command(s) failed", metadata={"failures": "\n".join(failures)})


def build_rsync_pull_job() -> dg.JobDefinition:
    @dg.job(name="rsync_pull_job",
            description="Pull the access logs of every site with its rsync commands (EEA's RSYNC_COMMANDS).")
    def rsync_pull_job():
        rsync_pull()

    return rsync_pull_job


def build_rsync_schedule(job, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="rsync_pull_hourly",
        job=job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.STOPPED,  # the demo has no remote to pull from
        description="Runs the rsync pull commands (cron from ANALYTICS_INGEST_RSYNC_CRON, default hourly at :05).",
    )


def build_daily_schedule(site, job) -> dg.ScheduleDefinition:
    return yesterday_schedule(
        site, job, name=f"{site.key}_daily_import", cron="30 0 * * *",
        description=f"Every night at 00:30 ({site.timezone}), queue and import yesterday for {site.name}.",
        tags=NO_RETRY_ON_STEP_FAILURE)
