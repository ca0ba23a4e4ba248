"""Per-site assets after the import: ``pretable`` (Loaded → Pretable) and ``counter_metrics``
(Pretable → Calculated), both partitioned by the site's days.

The pretable of day D depends on the import of D-1, D and D+1 when the site waits for its
neighbours (SciELO's rule for sessions across midnight), so the lineage shows what it waits for.
Readiness itself is the ledger's: a run for a day that is not ready fails with one line saying
which day is missing, and the ``<site>_ready_days`` sensor only asks for days that are ready.
"""


import dagster as dg

from ... import metadata_keys as keys
from ...counter import ITEM_COLUMNS
from ...counter.daily import compute_counter_day
from ...pretable import COLUMNS as PRETABLE_COLUMNS
from ...pretable import build_pretable
from ..resources import IngestResource
from ..site_day import day_of, engine_step, result, site_day_asset, stage_key, table_schema
from ..weblogs.assets import import_key

# One day per run (no multi-partition backfill policy): a day that is not ready must fail alone,
# and a run that fails materialises none of its partitions.

PRETABLE_SCHEMA = table_schema(PRETABLE_COLUMNS, {"serverTime": "timestamp", "latitude": "float", "longitude": "float"})
ITEMS_SCHEMA = table_schema(ITEM_COLUMNS, {name: "int" for name in ITEM_COLUMNS[3:]})


def pretable_key(site) -> dg.AssetKey:
    return stage_key(site, "pretable")


def counter_key(site) -> dg.AssetKey:
    return stage_key(site, "counter_metrics")


def _import_dependency(site) -> dg.AssetDep:
    if site.pretable.wait_for_neighbours:
        mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=1,
                                                allow_nonexistent_upstream_partitions=True)
        return dg.AssetDep(import_key(site), partition_mapping=mapping)
    return dg.AssetDep(import_key(site))


def build_counter_assets(site) -> list[dg.AssetsDefinition]:
    source = "Matomo's log tables (MATOMO_DB_URL)" if site.pretable.source == "matomo_db" else "the delivered hits"
    wait = "it and its neighbours D-1 and D+1 are" if site.pretable.wait_for_neighbours else "it is"

    @site_day_asset(
        site, "pretable",
        deps=[_import_dependency(site)],
        kinds={"parquet", "csv"},
        metadata={keys.COLUMN_SCHEMA: PRETABLE_SCHEMA},
        description=(
            f"SciELO's pretable of {site.name} for the day, from {source}: page views and downloads with serverTime "
            "(UTC), browserName, browserVersion, ip, latitude, longitude, actionName, as `<day>.tsv` (NULL for "
            f"missing) and `<day>.parquet`. Built once {wait} Loaded; the day becomes Pretable."
        ),
    )
    def pretable(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        with ingest.ledger() as ledger, engine_step():
            built = build_pretable(ingest.settings(), ledger, site, day_of(context))
        return result({
            keys.DAY_STATUS: built.day_status,
            "source": built.source,
            "rows": built.rows,
            keys.ROBOTS_EXCLUDED: built.robots_excluded,
            "geolocated": built.geolocated,
            "url_rules": built.url_rules or "not applied (read from Matomo's tables)",
            **({"unread": "; ".join(built.unread)} if built.unread else {}),
            "files_read": len(built.files_read),
            "tsv": dg.MetadataValue.path(built.tsv),
            "parquet": dg.MetadataValue.path(built.parquet),
            keys.SECONDS: built.seconds,
        }, row_count=built.rows)

    assets = [pretable]
    if site.counter.items is None:
        return assets

    @site_day_asset(
        site, "counter_metrics",
        deps=[pretable],
        kinds={"parquet", "csv"},
        metadata={keys.COLUMN_SCHEMA: ITEMS_SCHEMA},
        description=(
            f"COUNTER Release 5.1 item metrics of {site.name} for the day, from its pretable and the URL → item rules "
            f"`{site.counter.items.name}`: Total/Unique_Item_Investigations, Total/Unique_Item_Requests per item and "
            "Unique_Title_* per title (sessions = user + hour, double clicks within 30 s removed, robots excluded), "
            "as `<day>-items` / `<day>-titles` TSV and Parquet. The day becomes Calculated."
        ),
    )
    def counter_metrics(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        with ingest.ledger() as ledger, engine_step():
            computed = compute_counter_day(ingest.settings(), ledger, site, day_of(context))
        stats = computed.stats
        top = "\n".join(
            ["| item | title | TII | UII | TIR | UIR |", "|---|---|---|---|---|---|"]
            + [f"| {i} | {t or ''} | {a} | {b} | {c} | {d} |" for i, t, a, b, c, d in computed.top_items]
        )
        return result({
            keys.DAY_STATUS: computed.day_status,
            **computed.totals,
            "items": stats["items"],
            "titles": stats["titles"],
            "sessions": stats["sessions"],
            "rows_read": stats["rows_read"],
            keys.ROBOTS_EXCLUDED: stats["rows_robot"],
            "robots_list": computed.robots_list,
            "unknown_item_rows": stats["rows_unknown_item"],
            "invalid_rows": stats["rows_invalid"],
            "double_clicks_removed": stats["double_clicks_removed"],
            "top_items": dg.MetadataValue.md(top if computed.top_items else "_no item matched_"),
            "items_parquet": dg.MetadataValue.path(computed.files["items.parquet"]),
            "items_tsv": dg.MetadataValue.path(computed.files["items.tsv"]),
            keys.SECONDS: computed.seconds,
        }, row_count=stats["items"])

    assets.append(counter_metrics)
    return assets
