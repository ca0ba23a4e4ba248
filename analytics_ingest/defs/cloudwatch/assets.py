"""Per-site ``cloudwatch_missed_events`` (fetch and store a day's failed tracker requests) and
``matomo_replay`` (replay them exactly once), for the sites named in ``CLOUDWATCH_SITES``."""


import datetime as dt
import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from ... import metadata_keys as keys
from ...cloudwatch.pipeline import CloudwatchConfig, fetch_day, replay_stored_day
from ..resources import CloudWatchResource, IngestResource
from ..site_day import day_of, engine_step, result, site_day_asset, stage_key


def missed_key(site) -> dg.AssetKey:
    return stage_key(site, "cloudwatch_missed_events")


def replay_key(site) -> dg.AssetKey:
    return stage_key(site, "matomo_replay")


def _method(config: CloudwatchConfig) -> str:
    if config.api == "insights":
        return "Logs Insights over parallel windows, split at the 10,000-row cap"
    if config.api == "recorded":
        return f"filter_log_events paging over a recorded log group (`{os.path.basename(config.recording or '')}`, no AWS)"
    return "filter_log_events paging"


def build_cloudwatch_assets(site, config: CloudwatchConfig) -> list[dg.AssetsDefinition]:
    @site_day_asset(
        site, "cloudwatch_missed_events",
        kinds={"cloudwatch", "json"},
        description=(
            f"Tracker requests of Matomo site {site.id} that Matomo answered with a status >= {config.min_status}, "
            f"fetched for the day from CloudWatch Logs group `{config.log_group}` (streams matching "
            f"`{config.stream_pattern}`) with {_method(config)}; "
            "stored as JSON lines sorted by time and de-duplicated by event id. A failed or truncated window fails "
            "the run after what was fetched is stored."
        ),
    )
    def cloudwatch_missed_events(context: dg.AssetExecutionContext, ingest: IngestResource,
                                 cloudwatch: CloudWatchResource, s3: S3Resource) -> dg.MaterializeResult:
        with engine_step():
            fetched = fetch_day(ingest.settings(), cloudwatch.config((site.key,)), site, day_of(context),
                                s3_client=cloudwatch.s3_client(s3))
        outcome = fetched.result
        windows = "\n".join(["| window start | status | attempts | rows | truncated |", "|---|---|---|---|---|"] + [
            f"| {dt.datetime.fromtimestamp(w.start_ms / 1000, dt.timezone.utc):%H:%M:%S} | {w.status} | {w.attempts} "
            f"| {w.rows} | {w.truncated} |" for w in outcome.windows[:50]])
        metadata = {
            "fetched": len(outcome.events),
            "new_events": fetched.added,
            "stored_events": fetched.total,
            "location": fetched.location,
            "windows_by_status": dg.MetadataValue.json(outcome.window_statuses),
            "attempts_by_status": dg.MetadataValue.json(dict(outcome.attempt_statuses)),
            "splits": outcome.splits,
            "windows": dg.MetadataValue.md(windows),
            keys.SECONDS: round(outcome.seconds, 1),
        }
        if outcome.failed or outcome.truncated:
            raise dg.Failure(
                description=(f"{len(outcome.failed)} window(s) failed and {len(outcome.truncated)} were truncated after "
                             "retries; what was fetched is stored, rerun the day to complete it"),
                metadata=metadata,
            )
        return result(metadata)

    @site_day_asset(
        site, "matomo_replay",
        deps=[cloudwatch_missed_events],
        kinds={"matomo"},
        writes_to_matomo=True,
        description=(
            f"The day's missed tracker requests replayed into Matomo site {site.id} with their original parameters "
            "plus cip, ua and cdt from the log line (replay-tracking), through an append-only journal that the "
            "exactly-once importer delivers: rerunning a day or an overlapping window never counts twice."
        ),
    )
    def matomo_replay(context: dg.AssetExecutionContext, ingest: IngestResource, cloudwatch: CloudWatchResource,
                      s3: S3Resource) -> dg.MaterializeResult:
        with ingest.ledger() as ledger, engine_step():
            replayed = replay_stored_day(ingest.settings(), ledger, cloudwatch.config((site.key,)), site,
                                         day_of(context), s3_client=cloudwatch.s3_client(s3))
        return result({
            "appended": replayed.appended,
            "already_in_journal": replayed.already_present,
            keys.DELIVERED: replayed.delivered,
            "invalid": replayed.invalid,
            "invalid_reasons": dg.MetadataValue.json(replayed.invalid_reasons),
            "journal": dg.MetadataValue.path(replayed.journal),
            "status": replayed.status or "nothing to replay",
        })

    return [cloudwatch_missed_events, matomo_replay]
