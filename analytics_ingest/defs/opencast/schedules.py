"""The incremental harvest, every few minutes as the original's cron: from the cursor (the last
action's time, in ``OPENCAST_CURSOR``: a file or ``s3://bucket/key``) to now, into
``OPENCAST_OUTPUT`` (``{day}`` is today's date). Matomo events come from the daily asset only, so
that each action lands in exactly one day's journal."""


import datetime as dt
import os

import dagster as dg

from ...errors import IngestError
from ...opencast.daily import day_output
from ...opencast.run import build, harvest_once
from ...opencast.settings import OpencastSettings
from ..failures import fail
from ..resources import IngestResource

CRON = os.environ.get("OPENCAST_HARVEST_CRON", "*/2 * * * *")  # Harvard DCE harvested every 2 minutes


@dg.op(description="One incremental harvest: cursor → now, enriched, delivered; the cursor moves after delivery.")
def opencast_harvest_op(context: dg.OpExecutionContext, ingest: IngestResource) -> None:
    try:
        settings = OpencastSettings.from_env(home=str(ingest.settings().home))
        output = day_output(settings, dt.datetime.now(dt.timezone.utc).date())
        harvester, enricher, sink = build(settings, output=output)
        summary = harvest_once(harvester, enricher, sink)
    except IngestError as exc:
        raise fail(exc) from None
    context.log.info(summary.line())


@dg.job(description="Harvest Opencast user actions since the last harvest (the incremental cursor).")
def opencast_harvest_job():
    opencast_harvest_op()


opencast_harvest_schedule = dg.ScheduleDefinition(
    name="opencast_harvest",
    job=opencast_harvest_job,
    cron_schedule=CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Incremental Opencast harvest ({CRON}; OPENCAST_HARVEST_CRON).",
)
