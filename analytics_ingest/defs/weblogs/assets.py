"""Per-site assets: the day's log files (Queue) and their import into Matomo (Partial → Loaded).

One pair of assets per configured site, each partitioned by the site's own days, so every site
has its own status bar in the UI, its own backfills and its own concurrency pool.
"""


import datetime as dt

import dagster as dg

from ... import pipeline
from ...vocabulary import DAY_LOADED, DAY_STATUSES, IGNORED_CATEGORIES
from ..partitions import site_days
from ..resources import IngestResource

OWNERS = ["team:analytics"]
IMPORT_TAG = "analytics_ingest/matomo"  # run-level tag limited globally in dagster.yaml
# 365 days of one site in 12 runs; one run's failure leaves the other months' status intact.
BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
# A day past Loaded (pretable, calculated, done) is still completely imported.
LOADED_OR_LATER = DAY_STATUSES[DAY_STATUSES.index(DAY_LOADED):]


def _days(context) -> list[dt.date]:
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def files_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "access_log_files"])


def import_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "matomo_import"])


def build_site_assets(site) -> list[dg.AssetsDefinition]:
    partitions = site_days(site)

    @dg.asset(
        key=files_key(site),
        partitions_def=partitions,
        group_name=site.key,
        kinds={"file"},
        owners=OWNERS,
        backfill_policy=BACKFILL,
        description=(
            f"Access-log files of {site.name} (Matomo site {site.id}) for the day, as rsync left them in "
            f"`{site.log_dir}` (`{site.file_pattern}`). Queue: every file is known to the ledger with the days "
            "its content covers; files whose content contradicts their name are listed as invalid with the reason."
        ),
        tags={"site": site.key},
    )
    def access_log_files(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        with ingest.ledger() as ledger:
            for day in _days(context):
                report = pipeline.queue_day(ledger, site, day)
                rows = [[f["path"], f["size"], f["status"], f["reason"]] for f in report.files]
                context.add_asset_metadata(
                    {
                        "files": dg.MetadataValue.md(_md_table(["file", "bytes", "status", "reason"], rows))
                        if rows else dg.MetadataValue.md("_no file for this day yet_"),
                        "expected_files": report.expected,
                        "present_files": report.present,
                        "invalid_files": sum(1 for f in report.files if f["status"] == "invalid"),
                        "bytes": sum(f["size"] for f in report.files),
                        "newly_discovered": report.discovered,
                    },
                    partition_key=day.isoformat(),
                )
        return dg.MaterializeResult()

    @dg.asset(
        key=import_key(site),
        deps=[access_log_files],
        partitions_def=partitions,
        group_name=site.key,
        kinds={"matomo"},
        owners=OWNERS,
        backfill_policy=BACKFILL,
        pool=f"matomo_site_{site.id}",
        check_specs=[dg.AssetCheckSpec("day_loaded", asset=import_key(site), blocking=True,
                                       description="The day is Loaded: every expected file completely imported.")],
        description=(
            f"Hits of {site.name}'s access logs delivered to Matomo site {site.id}, exactly once. Imports the day's "
            "queued and partial files; the day becomes Partial when some are in and Loaded when all expected files are "
            "completely imported. Later stages (pretables, archives) wait for the `day_loaded` check."
        ),
        tags={"site": site.key},
    )
    def matomo_import(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        settings = ingest.settings()
        not_loaded = {}
        with ingest.ledger() as ledger:
            for day in _days(context):
                report = pipeline.import_day(settings, ledger, site, day)
                totals = report.totals()
                if report.status not in LOADED_OR_LATER:
                    not_loaded[day.isoformat()] = report.status
                for message in report.errors:
                    context.log.error(message)
                rows = [[r.path, r.status, r.lines_total, r.tracked, r.delivered, r.invalid, r.message]
                        for r in report.results]
                samples = [f"{r.path}:{n} ({why}) {text}" for r in report.results for n, why, text in r.invalid_samples]
                metadata = {
                    "day_status": report.status,
                    "files": dg.MetadataValue.md(
                        _md_table(["file", "status", "lines", "tracked", "delivered", "invalid", "note"], rows)
                        if rows else "_nothing to import_"),
                    "lines_total": totals["lines_total"],
                    "tracked": totals["tracked"],
                    "delivered": totals["delivered"],
                    "already_delivered": totals["already_delivered"],
                    "invalid": totals["invalid"],
                    "rejected": totals["rejected"],
                    "lines_per_second": totals["lines_per_second"],
                    **{f"ignored_{c}": totals[c] for c in IGNORED_CATEGORIES},
                }
                if samples:
                    metadata["invalid_samples"] = dg.MetadataValue.md("\n".join(f"- `{s[:200]}`" for s in samples[:10]))
                if report.errors:
                    metadata["errors"] = dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors))
                context.add_asset_metadata(metadata, partition_key=day.isoformat())
        check = dg.AssetCheckResult(
            check_name="day_loaded",
            passed=not not_loaded,
            metadata={"days_not_loaded": dg.MetadataValue.json(not_loaded), "days_checked": len(context.partition_keys)},
            description=None if not not_loaded else f"{len(not_loaded)} day(s) not Loaded yet",
        )
        return dg.MaterializeResult(check_results=[check])

    return [access_log_files, matomo_import]
