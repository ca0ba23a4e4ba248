"""Per-site ``cloudwatch_missed_events`` (fetch and store a day's failed tracker requests) and
``matomo_replay`` (replay them exactly once), for the sites named in ``CLOUDWATCH_SITES``."""


import datetime as dt
import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from ...cloudwatch.pipeline import CloudwatchConfig, fetch_day, replay_stored_day
from ...cloudwatch.store import ENV_S3
from ...errors import IngestError
from ..failures import fail
from ..partitions import site_days
from ..pools import MATOMO_POOL
from ..resources import IngestResource
from ..weblogs.assets import OWNERS


def missed_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "cloudwatch_missed_events"])


def replay_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "matomo_replay"])


def s3_client(s3: S3Resource):
    """dagster-aws's S3 client when events are kept in S3 (``ANALYTICS_INGEST_CLOUDWATCH_S3``)."""
    return s3.get_client() if os.environ.get(ENV_S3) else None


def _method(config: CloudwatchConfig) -> str:
    if config.api == "insights":
        return "Logs Insights over parallel windows, split at the 10,000-row cap"
    if config.api == "recorded":
        return f"filter_log_events paging over a recorded log group (`{os.path.basename(config.recording or '')}`, no AWS)"
    return "filter_log_events paging"


def build_cloudwatch_assets(site, config: CloudwatchConfig) -> list[dg.AssetsDefinition]:
    partitions = site_days(site)

    @dg.asset(
        key=missed_key(site),
        partitions_def=partitions,
        group_name=site.key,
        kinds={"cloudwatch", "json"},
        owners=OWNERS,
        tags={"site": site.key},
        description=(
            f"Tracker requests of Matomo site {site.id} that Matomo answered with a status >= {config.min_status}, "
            f"fetched for the day from CloudWatch Logs group `{config.log_group}` (streams matching "
            f"`{config.stream_pattern}`) with {_method(config)}; "
            "stored as JSON lines sorted by time and de-duplicated by event id. A failed or truncated window fails "
            "the run after what was fetched is stored."
        ),
    )
    def cloudwatch_missed_events(context: dg.AssetExecutionContext, ingest: IngestResource,
                                 s3: S3Resource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        try:
            fetched = fetch_day(ingest.settings(), config, site, day, s3_client=s3_client(s3))
        except IngestError as exc:
            raise fail(exc) from None
        result = fetched.result
        windows = "\n".join(["| window start | status | attempts | rows | truncated |", "|---|---|---|---|---|"] + [
            f"| {dt.datetime.fromtimestamp(w.start_ms / 1000, dt.timezone.utc):%H:%M:%S} | {w.status} | {w.attempts} "
            f"| {w.rows} | {w.truncated} |" for w in result.windows[:50]])
        metadata = {
            "fetched": len(result.events),
            "new_events": fetched.added,
            "stored_events": fetched.total,
            "location": fetched.location,
            "windows_by_status": dg.MetadataValue.json(result.window_statuses),
            "attempts_by_status": dg.MetadataValue.json(dict(result.attempt_statuses)),
            "splits": result.splits,
            "windows": dg.MetadataValue.md(windows),
            "seconds": round(result.seconds, 1),
        }
        if result.failed or result.truncated:
            raise dg.Failure(
                description=(f"{len(result.failed)} window(s) failed and {len(result.truncated)} were truncated after "
                             "retries; what was fetched is stored, rerun the day to complete it"),
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=replay_key(site),
        deps=[cloudwatch_missed_events],
        partitions_def=partitions,
        group_name=site.key,
        kinds={"matomo"},
        owners=OWNERS,
        pool=MATOMO_POOL,
        tags={"site": site.key},
        description=(
            f"The day's missed tracker requests replayed into Matomo site {site.id} with their original parameters "
            "plus cip, ua and cdt from the log line (replay-tracking), through an append-only journal that the "
            "exactly-once importer delivers: rerunning a day or an overlapping window never counts twice."
        ),
    )
    def matomo_replay(context: dg.AssetExecutionContext, ingest: IngestResource, s3: S3Resource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        with ingest.ledger() as ledger:
            try:
                replayed = replay_stored_day(ingest.settings(), ledger, site, day, s3_client=s3_client(s3))
            except IngestError as exc:
                raise fail(exc) from None
        return dg.MaterializeResult(metadata={
            "appended": replayed.appended,
            "already_in_journal": replayed.already_present,
            "imported": replayed.imported,
            "invalid": replayed.invalid,
            "invalid_reasons": dg.MetadataValue.json(replayed.invalid_reasons),
            "journal": dg.MetadataValue.path(replayed.journal),
            "status": replayed.status or "nothing to replay",
        })

    return [cloudwatch_missed_events, matomo_replay]
