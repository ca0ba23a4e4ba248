"""``opencast_useractions`` (a day's user actions, enriched, to SQS or files), ``opencast_episodes``
(the day's new episodes as Parquet) and, when ``OPENCAST_MATOMO_SITE`` is set,
``opencast_matomo_events`` (the day's actions as Matomo events, exactly once).

Which of them exist and their days are the location's Opencast plan (read at load); what they reach
at run time is the ``opencast`` resource."""


import dagster as dg

from ... import metadata_keys as keys
from ...opencast.daily import deliver_journal, episodes_day, harvest_day, journal_path
from ..location import OpencastPlan, current_location
from ..pools import MATOMO_POOL
from ..resources import IngestResource, OpencastResource
from ..site_day import CODE_VERSION, OWNERS, day_of, engine_step, result
from ..upstream import OPENCAST_EVENTS

GROUP = "opencast"
USERACTIONS = dg.AssetKey("opencast_useractions")
EPISODES = dg.AssetKey("opencast_episodes")
MATOMO_EVENTS = OPENCAST_EVENTS


def opencast_days(plan: OpencastPlan) -> dg.DailyPartitionsDefinition:
    """Days in the Opencast server's zone, from ``OPENCAST_START_DATE`` (default 2024-01-01)."""
    return dg.DailyPartitionsDefinition(start_date=plan.start_date.isoformat(), timezone=plan.timezone, end_offset=1)


def build_opencast_assets(plan: OpencastPlan | None = None) -> list[dg.AssetsDefinition]:
    """``plan``: the location's Opencast (default: the one of the current load)."""
    plan = plan or current_location().opencast
    partitions = opencast_days(plan)
    common = dict(partitions_def=partitions, group_name=GROUP, owners=OWNERS, code_version=CODE_VERSION)

    @dg.asset(
        key=USERACTIONS, kinds={"json", "sqs"}, **common,
        description=(
            "The day's Opencast user actions (`/usertracking/actions.json`, paged, digest auth), enriched with episode "
            "metadata (cached with EPISODE_CACHE_EXPIRE, in Redis when REDIS_URL is set) in the original harvester's "
            "message shape, delivered to OPENCAST_OUTPUT (sqs://QUEUE in batches of 10, or a JSON-lines file per day). "
            "Each message carries its action_id so consumers can drop the copies a re-run sends."
        ),
    )
    def useractions(context: dg.AssetExecutionContext, ingest: IngestResource,
                    opencast: OpencastResource) -> dg.MaterializeResult:
        with engine_step():
            summary, output, journal = harvest_day(opencast.settings(ingest), day_of(context))
        metadata = {
            "fetched": summary.fetched, "duplicates_dropped": summary.duplicates, keys.DELIVERED: summary.delivered,
            "episodes_without_attachments": summary.without_attachments,
            "episodes_missing": summary.episodes_missing, "output": output,
        }
        if journal:
            metadata.update({"matomo_journal": dg.MetadataValue.path(journal), "journaled": summary.journaled})
        return result(metadata)

    @dg.asset(
        key=EPISODES, kinds={"parquet"}, **common,
        description=(
            "Episodes created that day (search endpoint, deleted ones included), with live-stream start/stop and "
            "availability from the admin node's workflow API when OPENCAST_ADMIN_URL is set, as "
            "`opencast/episodes/<day>.parquet`. Episodes without attachments are kept."
        ),
    )
    def episodes(context: dg.AssetExecutionContext, ingest: IngestResource,
                 opencast: OpencastResource) -> dg.MaterializeResult:
        with engine_step():
            found = episodes_day(opencast.settings(ingest), day_of(context))
        return result({
            "episodes": found.episodes, "without_attachments": found.without_attachments,
            "with_live_info": found.with_live_info, "parquet": dg.MetadataValue.path(found.path),
            "titles": dg.MetadataValue.md("\n".join(f"- {t}" for t in found.titles) or "_none_"),
        }, row_count=found.episodes)

    assets = [useractions, episodes]
    site_id = plan.matomo_site
    if site_id is None:
        return assets

    @dg.asset(
        key=MATOMO_EVENTS, deps=[useractions], kinds={"matomo"}, pool=MATOMO_POOL, **common,
        description=(
            f"The day's user actions as Matomo events of site {site_id} (e_c category, e_a action type, e_n episode), "
            "with the viewer's IP and user agent and the action's time, delivered exactly once through the importer: "
            "harvesting a day again never duplicates in Matomo."
        ),
    )
    def matomo_events(context: dg.AssetExecutionContext, ingest: IngestResource,
                      opencast: OpencastResource) -> dg.MaterializeResult:
        with engine_step():
            journal = journal_path(opencast.settings(ingest), day_of(context))
        if not journal.exists():
            return result({keys.DELIVERED: 0, "note": "no user action that day"})
        with ingest.ledger() as ledger, engine_step():
            delivered = deliver_journal(ingest.settings(), ledger, site_id, str(journal))
        return result({
            keys.DELIVERED: delivered.delivered, "status": delivered.status, keys.LINES_TOTAL: delivered.lines_total,
            "invalid": delivered.invalid, "journal": dg.MetadataValue.path(str(journal)),
        })

    assets.append(matomo_events)
    return assets
