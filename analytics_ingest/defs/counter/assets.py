"""Per-site assets after the import: ``pretable`` (Loaded → Pretable) and ``counter_metrics``
(Pretable → Calculated), both partitioned by the site's days.

The pretable of day D depends on the import of D-1, D and D+1 when the site waits for its
neighbours (SciELO's rule for sessions across midnight), so the lineage shows what it waits for.
Readiness itself is the ledger's: a run for a day that is not ready fails with one line saying
which day is missing, and the ``<site>_ready_days`` sensor only asks for days that are ready.
"""


import datetime as dt

import dagster as dg

from ...counter.daily import compute_counter_day
from ...errors import IngestError
from ...pretable import build_pretable
from ..failures import fail
from ..partitions import site_days
from ..resources import IngestResource
from ..weblogs.assets import OWNERS, import_key

# One day per run (no multi-partition backfill policy): a day that is not ready must fail alone,
# and a run that fails materialises none of its partitions.


def pretable_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "pretable"])


def counter_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "counter_metrics"])


def _import_dependency(site) -> dg.AssetDep:
    if site.pretable.wait_for_neighbours:
        mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=1,
                                                allow_nonexistent_upstream_partitions=True)
        return dg.AssetDep(import_key(site), partition_mapping=mapping)
    return dg.AssetDep(import_key(site))


def build_counter_assets(site) -> list[dg.AssetsDefinition]:
    partitions = site_days(site)
    source = "Matomo's log tables (MATOMO_DB_URL)" if site.pretable.source == "matomo_db" else "the delivered hits"
    wait = "it and its neighbours D-1 and D+1 are" if site.pretable.wait_for_neighbours else "it is"

    @dg.asset(
        key=pretable_key(site),
        deps=[_import_dependency(site)],
        partitions_def=partitions,
        group_name=site.key,
        kinds={"parquet", "csv"},
        owners=OWNERS,
        tags={"site": site.key},
        description=(
            f"SciELO's pretable of {site.name} for the day, from {source}: page views and downloads with serverTime "
            "(UTC), browserName, browserVersion, ip, latitude, longitude, actionName, as `<day>.tsv` (NULL for "
            f"missing) and `<day>.parquet`. Built once {wait} Loaded; the day becomes Pretable."
        ),
    )
    def pretable(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        with ingest.ledger() as ledger:
            try:
                result = build_pretable(ingest.settings(), ledger, site, day)
            except IngestError as exc:
                raise fail(exc) from None
        return dg.MaterializeResult(metadata={
            "day_status": result.day_status,
            "source": result.source,
            "rows": result.rows,
            "bots_excluded": result.bots_excluded,
            "geolocated": result.geolocated,
            "files_read": len(result.files_read),
            "tsv": dg.MetadataValue.path(result.tsv),
            "parquet": dg.MetadataValue.path(result.parquet),
            "seconds": result.seconds,
        })

    assets = [pretable]
    if site.counter.items is None:
        return assets

    @dg.asset(
        key=counter_key(site),
        deps=[pretable],
        partitions_def=partitions,
        group_name=site.key,
        kinds={"parquet", "csv"},
        owners=OWNERS,
        tags={"site": site.key},
        description=(
            f"COUNTER Release 5.1 item metrics of {site.name} for the day, from its pretable and the URL → item rules "
            f"`{site.counter.items.name}`: Total/Unique_Item_Investigations, Total/Unique_Item_Requests per item and "
            "Unique_Title_* per title (sessions = user + hour, double clicks within 30 s removed, robots excluded), "
            "as `<day>-items` / `<day>-titles` TSV and Parquet. The day becomes Calculated."
        ),
    )
    def counter_metrics(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        with ingest.ledger() as ledger:
            try:
                result = compute_counter_day(ingest.settings(), ledger, site, day)
            except IngestError as exc:
                raise fail(exc) from None
        stats = result.stats
        top = "\n".join(
            ["| item | title | TII | UII | TIR | UIR |", "|---|---|---|---|---|---|"]
            + [f"| {i} | {t or ''} | {a} | {b} | {c} | {d} |" for i, t, a, b, c, d in result.top_items]
        )
        return dg.MaterializeResult(metadata={
            "day_status": result.day_status,
            **result.totals,
            "items": stats["items"],
            "titles": stats["titles"],
            "sessions": stats["sessions"],
            "rows_read": stats["rows_read"],
            "robots_excluded": stats["rows_robot"],
            "robots_list": result.robots_list,
            "unknown_item_rows": stats["rows_unknown_item"],
            "invalid_rows": stats["rows_invalid"],
            "double_clicks_removed": stats["double_clicks_removed"],
            "top_items": dg.MetadataValue.md(top if result.top_items else "_no item matched_"),
            "items_parquet": dg.MetadataValue.path(result.files["items.parquet"]),
            "items_tsv": dg.MetadataValue.path(result.files["items.tsv"]),
            "seconds": result.seconds,
        })

    assets.append(counter_metrics)
    return assets
