"""The incremental harvest, every few minutes as the original's cron: from the cursor (the last
action's time, in ``OPENCAST_CURSOR``: a file or ``s3://bucket/key``) to now, into
``OPENCAST_OUTPUT`` (``{day}`` is today's date). Matomo events come from the daily asset only, so
that each action lands in exactly one day's journal."""


import datetime as dt

import dagster as dg

from ...opencast.daily import day_output
from ...opencast.run import build, harvest_once
from ..resources import IngestResource, OpencastResource
from ..site_day import engine_step


@dg.op(description="One incremental harvest: cursor → now, enriched, delivered; the cursor moves after delivery.")
def opencast_harvest_op(context: dg.OpExecutionContext, ingest: IngestResource, opencast: OpencastResource) -> None:
    with engine_step():
        settings = opencast.settings(ingest)
        output = day_output(settings, dt.datetime.now(dt.timezone.utc).date())
        harvester, enricher, sink = build(settings, output=output)
        summary = harvest_once(harvester, enricher, sink)
    context.log.info(summary.line())


def build_opencast_harvest_job() -> dg.JobDefinition:
    @dg.job(name="opencast_harvest_job",
            description="Harvest Opencast user actions since the last harvest (the incremental cursor).")
    def opencast_harvest_job():
        opencast_harvest_op()

    return opencast_harvest_job


def build_opencast_harvest_schedule(job, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="opencast_harvest",
        job=job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Incremental Opencast harvest ({cron}; OPENCAST_HARVEST_CRON).",
    )
