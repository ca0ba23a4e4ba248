"""The one adapter between a site-day stage of the engine and Dagster.

Every per-site asset is the same shape: key ``<site>/<stage>``, the site's daily partitions in its
timezone, group = site, owners, kinds, the ``matomo`` pool when it writes to Matomo, a body that calls
one engine function for the partition's day and turns its result into metadata. The ledger-driven
sensors are one shape too: walk the site's day records, ask for the days the ledger says are due,
with a run key naming the day's last delivery. Both are written once here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import dagster as dg

from .. import metadata_keys as keys
from ..errors import IngestError
from ..site_time import site_zone
from .failures import fail
from .partitions import site_days
from .pools import MATOMO_POOL
from .resources import IngestResource

OWNERS = ["team:analytics"]
# Bump a stage's code version when the same inputs would now give a different output (new column,
# changed rule): Dagster then shows its materialised days as stale.
CODE_VERSION = "1"


def stage_key(site, stage: str) -> dg.AssetKey:
    return dg.AssetKey([site.key, stage])


def site_day_asset(site, stage: str, *, description: str, kinds: set[str], deps: Sequence = (),
                   writes_to_matomo: bool = False, check_specs: Sequence[dg.AssetCheckSpec] | None = None,
                   backfill_policy: dg.BackfillPolicy | None = None, metadata: Mapping | None = None,
                   code_version: str = CODE_VERSION):
    """The ``@dg.asset`` decorator of ``<site>/<stage>``; the body gets the day from :func:`day_of`."""
    return dg.asset(
        key=stage_key(site, stage),
        deps=list(deps),
        partitions_def=site_days(site),
        group_name=site.key,
        kinds=kinds,
        owners=OWNERS,
        tags={"site": site.key},
        pool=MATOMO_POOL if writes_to_matomo else None,
        check_specs=list(check_specs) if check_specs else None,
        backfill_policy=backfill_policy,
        metadata=dict(metadata) if metadata else None,
        code_version=code_version,
        description=description,
    )


def day_of(context) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


@contextlib.contextmanager
def engine_step() -> Iterator[None]:
    """An engine error ends the step with its one line (:func:`fail`), not a traceback."""
    try:
        yield
    except IngestError as exc:
        raise fail(exc) from None


def table_schema(columns: Iterable[str], types: Mapping[str, str] | None = None) -> dg.TableSchema:
    """The columns of a TSV/Parquet output, for ``dagster/column_schema``."""
    types = types or {}
    return dg.TableSchema(columns=[dg.TableColumn(name, types.get(name, "string")) for name in columns])


def result(metadata: Mapping, *, row_count: int | None = None, check_results=None) -> dg.MaterializeResult:
    """A stage's metadata as a MaterializeResult, in the shared vocabulary (:mod:`analytics_ingest.metadata_keys`).

    ``row_count``: rows of the stage's table output, under Dagster's own key so the UI shows it."""
    values = dict(metadata)
    if row_count is not None:
        values[keys.ROW_COUNT] = dg.MetadataValue.int(row_count)
    return dg.MaterializeResult(metadata=values, check_results=check_results)


# --- ledger-driven sensors ------------------------------------------------------------------------

MAX_RUNS_PER_TICK = 31  # a month of catching up per tick; the rest follows on the next ticks

# (ledger, has_partition_key, counters) -> (day key, version of the day) for each day that is due;
# ``counters`` collects what the skip reason reports.
DuePicker = Callable[[object, Callable[[str], bool], dict], Iterable[tuple[str, str]]]


def ledger_days_sensor(site, job, *, stage: str, name: str, interval_s: int, description: str,
                       due: DuePicker, idle: Callable[[dict], str]) -> dg.SensorDefinition:
    """A sensor asking ``job`` for each day of ``site`` the ledger says is ``due``.

    The run key is ``<site>:<stage>:<day>:<version>``: a day is asked for once per version of its
    hits (its last delivery), so a day that received new hits is asked for again. Only existing
    partitions are asked for: a request for a missing one fails the whole tick."""
    partitions = site_days(site)

    @dg.sensor(name=name, job=job, minimum_interval_seconds=interval_s,
               default_status=dg.DefaultSensorStatus.RUNNING, description=description)
    def ledger_days(context: dg.SensorEvaluationContext, ingest: IngestResource) -> dg.SensorResult:
        requests, counters = [], {}
        with ingest.ledger() as ledger:
            for key, version in due(ledger, partitions.has_partition_key, counters):
                requests.append(dg.RunRequest(run_key=f"{site.key}:{stage}:{key}:{version}", partition_key=key))
                if len(requests) >= MAX_RUNS_PER_TICK:
                    break
        return dg.SensorResult(run_requests=requests,
                               skip_reason=None if requests else dg.SkipReason(idle(counters)))

    return ledger_days


# --- schedules ------------------------------------------------------------------------------------

# A run that fails because a day of it is not Loaded yet (files still to come) is not retried at once
# (run_retries in deploy/dagster.yaml): that cannot make the day Loaded and only adds a failed run.
# The file that completes the day asks for it again (sensor), and "failed and missing" backfills
# pick up what is left. Runs that die outside a step (a crashed process) are still retried.
NO_RETRY_ON_STEP_FAILURE = {"dagster/retry_on_asset_or_op_failure": "false"}


def yesterday_schedule(site, job, *, name: str, cron: str, description: str,
                       tags: dict[str, str] | None = None) -> dg.ScheduleDefinition:
    """A schedule in the site's timezone that asks ``job`` for the site's yesterday (runs tagged ``tags``).

    ``site``: anything with ``key``, ``timezone`` and ``start_date`` (a site, the Opencast server)."""

    @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=site.timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def daily(context: dg.ScheduleEvaluationContext):
        local = context.scheduled_execution_time.astimezone(site_zone(site.timezone))
        yesterday = (local.date() - dt.timedelta(days=1)).isoformat()
        if yesterday < site.start_date.isoformat():
            return dg.SkipReason(f"{yesterday} is before {site.key}'s start date")
        return dg.RunRequest(run_key=f"{name}:{yesterday}", partition_key=yesterday, tags=tags)

    return daily
