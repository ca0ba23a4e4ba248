"""``<site>_archive_days``: ask for ``matomo_archive`` of every Loaded day that received hits since
its last archive (the ledger decides; the run key names the day's last delivery, so each new
version of a day is archived once)."""


import dagster as dg

from ...archiving import archive_needed
from ...vocabulary import DAY_LOADED, DAY_STATUSES
from ..partitions import site_days
from ..resources import IngestResource

MAX_RUNS_PER_TICK = 31
COMPLETE = DAY_STATUSES[DAY_STATUSES.index(DAY_LOADED):]


def build_archive_sensor(site, job) -> dg.SensorDefinition:
    partitions = site_days(site)

    @dg.sensor(
        name=f"{site.key}_archive_days",
        job=job,
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Re-archives {site.name}'s days in Matomo once they are Loaded and received new hits.",
    )
    def archive_days(context: dg.SensorEvaluationContext, ingest: IngestResource) -> dg.SensorResult:
        requests = []
        with ingest.ledger() as ledger:
            archived = ledger.archive_records(site.id)
            for record in ledger.day_statuses(site.id):
                if record.status not in COMPLETE or not partitions.has_partition_key(record.day.isoformat()):
                    continue
                done = archived.get(record.day)
                if done is not None and done["archived_at"] >= record.updated_at:
                    continue  # nothing touched the day since its archive
                needed, _reason, last = archive_needed(ledger, site, record.day)
                if not needed:
                    continue
                key = record.day.isoformat()
                requests.append(dg.RunRequest(run_key=f"{site.key}:archive:{key}:{last.isoformat()}", partition_key=key))
                if len(requests) >= MAX_RUNS_PER_TICK:
                    break
        return dg.SensorResult(run_requests=requests,
                               skip_reason=None if requests else dg.SkipReason("no day received new hits"))

    return archive_days
