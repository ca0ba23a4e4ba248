"""Per-site assets: the day's log files (Queue) and their import into Matomo (Partial → Loaded).

One pair of assets per configured site, each partitioned by the site's own days, so every site
has its own status bar in the UI and its own backfills. The import runs in the ``matomo`` pool
(:mod:`analytics_ingest.defs.pools`) with every other Matomo writer.
"""


import datetime as dt

import dagster as dg

from ... import metadata_keys as keys
from ...vocabulary import DAY_LOADED, DAY_STATUSES, FILE_INVALID, FILE_LOADED, IGNORED_CATEGORIES, KIND_LOG
from ...weblogs import pipeline
from ..resources import IngestResource
from ..site_day import site_day_asset, stage_key
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


def _import_metadata(report) -> dict:
    totals = report.totals()
    rows = [[r.path, r.status, r.lines_total, r.tracked, r.delivered, r.invalid, r.message] for r in report.results]
    samples = [f"{r.path}:{n} ({why}) {text}" for r in report.results for n, why, text in r.invalid_samples]
    metadata = {
        keys.DAY_STATUS: report.status,
        "files": dg.MetadataValue.md(
            _md_table(["file", "status", "lines_total", "tracked", "delivered", "invalid", "note"], rows)
            if rows else "_nothing to import_"),
        keys.LINES_TOTAL: totals["lines_total"],
        "tracked": totals["tracked"],
        keys.DELIVERED: totals["delivered"],
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
    return metadata


def _why_not_loaded(day: dt.date, status: str, expected: int, files: list, errors: list[str]) -> str:
    """One line for a day that is not Loaded, e.g. "2024-03-15: partial — 1 of 2 expected files loaded; ...".

    ``files``: the ledger's log files listed on the day (its own and neighbours' spilling into it).
    """
    own = [f for f in files if f.day == day and f.status != FILE_INVALID]
    own_loaded = sum(1 for f in own if f.status == FILE_LOADED)
    unfinished = [f for f in files if f.status not in (FILE_LOADED, FILE_INVALID)]
    line = f"{day.isoformat()}: {status} — {own_loaded} of {expected} expected file{'s' if expected != 1 else ''} loaded"
    if unfinished:
        line += f", {len(unfinished)} found but not completely imported"
    if errors:
        return line + f"; {len(errors)} import error(s), first: {errors[0][:300]}"
    if unfinished:
        return line + "; rerun to resume them"
    return line + ("; none found yet: rerun when they arrive" if not own else "; rerun when the rest arrive")


def files_key(site) -> dg.AssetKey:
    return stage_key(site, "access_log_files")


def import_key(site) -> dg.AssetKey:
    return stage_key(site, "matomo_import")


def build_site_assets(site) -> list[dg.AssetsDefinition]:
    @site_day_asset(
        site, "access_log_files",
        kinds={"file"},
        backfill_policy=BACKFILL,
        description=(
            f"Access-log files of {site.name} (Matomo site {site.id}) for the day, as rsync left them in "
            f"`{site.log_dir}` (`{site.file_pattern}`). Queue: every file is known to the ledger with the days "
            "its content covers; files whose content contradicts their name are listed as invalid with the reason."
        ),
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
                        # the ledger's and `analytics-ingest status`'s words for the same numbers
                        keys.EXPECTED: report.expected,
                        keys.FOUND: report.found,
                        "invalid_files": sum(1 for f in report.files if f["status"] == "invalid"),
                        "bytes": sum(f["size"] for f in report.files),
                        "newly_discovered": report.discovered,
                    },
                    partition_key=day.isoformat(),
                )
        return dg.MaterializeResult()

    @site_day_asset(
        site, "matomo_import",
        deps=[access_log_files],
        kinds={"matomo"},
        writes_to_matomo=True,
        backfill_policy=BACKFILL,
        check_specs=[dg.AssetCheckSpec("day_loaded", asset=import_key(site), blocking=True,
                                       description="Every day of the run is Loaded: all expected files completely "
                                                   "imported. The days that are not are the run's failed partitions.")],
        description=(
            f"Hits of {site.name}'s access logs delivered to Matomo site {site.id}, exactly once. Imports the day's "
            "queued and partial files; the day becomes Partial when some are in and Loaded when all expected files are "
            "completely imported. A partition is materialised only when its day is Loaded (or has no logs expected); "
            "a Queue or Partial day is a failed partition, so backfilling \"failed and missing\" retries exactly the "
            "days that need work. Later stages (pretables, archives) wait for it and for the `day_loaded` check."
        ),
    )
    def matomo_import(context: dg.AssetExecutionContext, ingest: IngestResource):
        # The partition status in the UI must be the ledger's: a Loaded day is materialised, a day
        # that is not fails. One run covers up to 31 days, so when some are not Loaded the Loaded
        # ones are materialised one by one (runtime materialisations) and the step fails; Dagster
        # then marks every day of the run without a materialisation as failed.
        settings = ingest.settings()
        days = _days(context)
        metadata: dict[str, dict] = {}
        statuses: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        with ingest.ledger() as ledger:
            # A backfill of this asset alone must see an expected_files count edited since the last Queue.
            pipeline.sync_expected_files(ledger, site)
            for day in days:
                key = day.isoformat()
                try:
                    report = pipeline.import_day(settings, ledger, site, day)
                except Exception:
                    # The days already Loaded stay materialised; this one and the rest fail with the run.
                    for done in statuses:
                        if statuses[done] in LOADED_OR_LATER:
                            context.log_event(dg.AssetMaterialization(
                                asset_key=import_key(site), partition=done, metadata=metadata[done]))
                    raise
                statuses[key], errors[key] = report.status, list(report.errors)
                for message in report.errors:
                    context.log.error(message)
                metadata[key] = _import_metadata(report)
            records = {r.day.isoformat(): r for r in ledger.day_statuses(site.id, since=days[0]) if r.day <= days[-1]}
            not_loaded: dict[str, str] = {}  # day -> one line saying why
            for day in days:
                key = day.isoformat()
                record = records.get(key)
                expected = record.expected if record is not None else site.expected_on(day)
                metadata[key][keys.EXPECTED] = expected
                if statuses[key] in LOADED_OR_LATER:
                    if expected == 0:
                        metadata[key]["note"] = "no logs expected: expected_files is 0 for this day"
                else:
                    files = [f for f in ledger.list_files(site_id=site.id, day=day) if f.kind == KIND_LOG]
                    not_loaded[key] = _why_not_loaded(day, statuses[key], expected, files, errors[key])
                    metadata[key]["not_loaded"] = not_loaded[key]

        check = dg.AssetCheckResult(
            check_name="day_loaded",
            passed=not not_loaded,
            metadata={
                "days_not_loaded": dg.MetadataValue.json({k: statuses[k] for k in not_loaded}),
                "days_checked": len(days),
                "days_loaded": len(days) - len(not_loaded),
            },
            description=None if not not_loaded else (
                f"{len(not_loaded)} of {len(days)} day(s) not Loaded (failed partitions):\n" + "\n".join(not_loaded.values())),
        )
        if not not_loaded:
            for key, values in metadata.items():
                context.add_asset_metadata(values, partition_key=key)
            yield dg.MaterializeResult(check_results=[check])
            return

        for key, values in metadata.items():
            if key in not_loaded:
                # Not a materialisation: the day's counts stay visible on its partition all the same.
                context.log_event(dg.AssetObservation(asset_key=import_key(site), partition=key, metadata=values))
            else:
                context.log_event(dg.AssetMaterialization(asset_key=import_key(site), partition=key, metadata=values))
        yield check
        lines = "\n".join(not_loaded.values())
        raise dg.Failure(
            description=f"{len(not_loaded)} of {len(days)} day(s) not Loaded:\n{lines}",
            metadata={"days_not_loaded": dg.MetadataValue.json({k: statuses[k] for k in not_loaded})},
            # Waiting for files is not helped by retrying now: the next file's arrival asks again.
            allow_retries=False,
        )

    return [access_log_files, matomo_import]
