"""``opencast_useractions`` (a day's user actions, enriched, to SQS or files), ``opencast_episodes``
(the day's new episodes as Parquet) and, when ``OPENCAST_MATOMO_SITE`` is set,
``opencast_matomo_events`` (the day's actions as Matomo events, exactly once)."""


import datetime as dt
import os
from collections.abc import Callable, Mapping

import dagster as dg

from ...errors import IngestError
from ...opencast.daily import deliver_journal, episodes_day, harvest_day, matomo_site
from ...opencast.settings import OpencastSettings
from ..failures import fail
from ..pools import MATOMO_POOL
from ..resources import IngestResource
from ..weblogs.assets import OWNERS

GROUP = "opencast"
USERACTIONS = dg.AssetKey("opencast_useractions")
EPISODES = dg.AssetKey("opencast_episodes")
MATOMO_EVENTS = dg.AssetKey("opencast_matomo_events")


Environ = Callable[[], Mapping[str, str]] | None  # the environment to read (None: os.environ)


def opencast_days(env: Mapping[str, str] | None = None) -> dg.DailyPartitionsDefinition:
    """Days in the Opencast server's zone, from ``OPENCAST_START_DATE`` (default 2024-01-01)."""
    env = os.environ if env is None else env
    return dg.DailyPartitionsDefinition(start_date=env.get("OPENCAST_START_DATE", "2024-01-01"),
                                        timezone=env.get("OPENCAST_TIMEZONE", "UTC"), end_offset=1)


def build_opencast_assets(environ: Environ = None) -> list[dg.AssetsDefinition]:
    """``environ``: called at run time for the settings (the embedded default's recorded Opencast);
    None reads the process environment."""

    def env() -> Mapping[str, str] | None:
        return environ() if environ is not None else None

    def _settings(ingest: IngestResource) -> OpencastSettings:
        return OpencastSettings.from_env(env(), home=str(ingest.settings().home))

    partitions = opencast_days(env())

    @dg.asset(
        key=USERACTIONS, partitions_def=partitions, group_name=GROUP, kinds={"json", "sqs"}, owners=OWNERS,
        description=(
            "The day's Opencast user actions (`/usertracking/actions.json`, paged, digest auth), enriched with episode "
            "metadata (cached with EPISODE_CACHE_EXPIRE, in Redis when REDIS_URL is set) in the original harvester's "
            "message shape, delivered to OPENCAST_OUTPUT (sqs://QUEUE in batches of 10, or a JSON-lines file per day). "
            "Each message carries its action_id so consumers can drop the copies a re-run sends."
        ),
    )
    def useractions(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        try:
            summary, output, journal = harvest_day(_settings(ingest), day, environ=env())
        except IngestError as exc:
            raise fail(exc) from None
        metadata = {
            "fetched": summary.fetched, "duplicates_dropped": summary.duplicates, "delivered": summary.delivered,
            "episodes_without_attachments": summary.without_attachments,
            "episodes_missing": summary.episodes_missing, "output": output,
        }
        if journal:
            metadata.update({"matomo_journal": dg.MetadataValue.path(journal), "journaled": summary.journaled})
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=EPISODES, partitions_def=partitions, group_name=GROUP, kinds={"parquet"}, owners=OWNERS,
        description=(
            "Episodes created that day (search endpoint, deleted ones included), with live-stream start/stop and "
            "availability from the admin node's workflow API when OPENCAST_ADMIN_URL is set, as "
            "`opencast/episodes/<day>.parquet`. Episodes without attachments are kept."
        ),
    )
    def episodes(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        try:
            result = episodes_day(_settings(ingest), day)
        except IngestError as exc:
            raise fail(exc) from None
        return dg.MaterializeResult(metadata={
            "episodes": result.episodes, "without_attachments": result.without_attachments,
            "with_live_info": result.with_live_info, "parquet": dg.MetadataValue.path(result.path),
            "titles": dg.MetadataValue.md("\n".join(f"- {t}" for t in result.titles) or "_none_"),
        })

    assets = [useractions, episodes]
    site_id = matomo_site(env())
    if site_id is None:
        return assets

    @dg.asset(
        key=MATOMO_EVENTS, deps=[useractions], partitions_def=partitions, group_name=GROUP, kinds={"matomo"},
        owners=OWNERS, pool=MATOMO_POOL,
        description=(
            f"The day's user actions as Matomo events of site {site_id} (e_c category, e_a action type, e_n episode), "
            "with the viewer's IP and user agent and the action's time, delivered exactly once through the importer: "
            "harvesting a day again never duplicates in Matomo."
        ),
    )
    def matomo_events(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        from ...opencast.daily import journal_path

        day = dt.date.fromisoformat(context.partition_key)
        journal = journal_path(_settings(ingest), day)
        if not journal.exists():
            return dg.MaterializeResult(metadata={"delivered": 0, "note": "no user action that day"})
        with ingest.ledger() as ledger:
            try:
                result = deliver_journal(ingest.settings(), ledger, site_id, str(journal))
            except IngestError as exc:
                raise fail(exc) from None
        return dg.MaterializeResult(metadata={
            "delivered": result.delivered, "status": result.status, "lines": result.lines_total,
            "invalid": result.invalid, "journal": dg.MetadataValue.path(str(journal)),
        })

    assets.append(matomo_events)
    return assets
