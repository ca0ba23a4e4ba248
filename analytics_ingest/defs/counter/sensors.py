"""``<site>_ready_days``: ask for the pretable (and its COUNTER metrics) of every day the ledger
says is ready -- Loaded, with its neighbours Loaded when the site waits for them.

The run key names the day and its last delivery, so a day is asked for once per version of its
hits: a day that received new hits (and stepped back to Loaded) is asked for again.
"""


import dagster as dg

from ...pretable import neighbours_ready
from ...vocabulary import DAY_LOADED
from ..partitions import site_days
from ..resources import IngestResource

MAX_RUNS_PER_TICK = 31  # a month of catching up per tick; the rest follows on the next ticks


def build_ready_days_sensor(site, job) -> dg.SensorDefinition:
    partitions = site_days(site)

    @dg.sensor(
        name=f"{site.key}_ready_days",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(f"Asks for the pretable and COUNTER metrics of {site.name}'s days once they are Loaded"
                     + (" with their neighbours D-1 and D+1" if site.pretable.wait_for_neighbours else "") + "."),
    )
    def ready_days(context: dg.SensorEvaluationContext, ingest: IngestResource) -> dg.SensorResult:
        requests, waiting = [], 0
        with ingest.ledger() as ledger:
            for record in ledger.day_statuses(site.id):
                if record.status != DAY_LOADED:
                    continue
                key = record.day.isoformat()
                if not partitions.has_partition_key(key):
                    continue
                if neighbours_ready(ledger, site, record.day):
                    waiting += 1
                    continue
                last = ledger.last_delivery(site.id, record.day)
                requests.append(dg.RunRequest(
                    run_key=f"{site.key}:pretable:{key}:{last.isoformat() if last else 'none'}",
                    partition_key=key,
                ))
                if len(requests) >= MAX_RUNS_PER_TICK:
                    break
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if requests else dg.SkipReason(f"no day ready ({waiting} Loaded day(s) wait for a neighbour)"),
        )

    return ready_days
