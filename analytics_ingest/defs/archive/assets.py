"""Per-site ``matomo_archive`` asset and its ``reports_match_ledger`` check.

The asset invalidates the day's reports and runs the configured archiver only when new hits
reached the day since its last archive; otherwise it materialises with the reason it skipped, so
the UI shows a decision for every day. The check then reads Matomo's ``VisitsSummary.get`` and
``Actions.get`` for the day and compares them with what the ledger says was delivered.
"""


import datetime as dt
import os

import dagster as dg

from ... import archiving
from ...errors import IngestError
from ...matomo.archive import ENV_RUNNER
from ..failures import fail
from ..partitions import site_days
from ..pools import MATOMO_POOL
from ..resources import IngestResource
from ..weblogs.assets import OWNERS, import_key


def archive_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "matomo_archive"])


CHECK = "reports_match_ledger"
CHECK_DESCRIPTION = (
    "Matomo's page views and downloads of the day (VisitsSummary.get / Actions.get) account for every hit the "
    "ledger delivered, less those Matomo's tracker excluded although it answered them as tracked (its bot IP "
    "ranges, the excluded IPs and user agents): equal, or at least as many when the site also has a JS tracker "
    "(archive: {exact: false}). A silent archive failure shows here, with the next step (the import, or "
    "matomo_archive). It warns instead of failing when MATOMO_ARCHIVE_RUNNER is none: Matomo's own cron may not "
    "have archived yet."
)


def _severity() -> dg.AssetCheckSeverity:
    runner = os.environ.get(ENV_RUNNER, "none").strip().lower()
    return dg.AssetCheckSeverity.WARN if runner in ("", "none") else dg.AssetCheckSeverity.ERROR


def build_archive_assets(site, extra_deps=()) -> list[dg.AssetsDefinition]:
    """``extra_deps``: other assets that deliver hits to the day (CloudWatch replay)."""
    partitions = site_days(site)

    @dg.asset(
        key=archive_key(site),
        deps=[import_key(site), *extra_deps],
        partitions_def=partitions,
        group_name=site.key,
        kinds={"matomo"},
        owners=OWNERS,
        pool=MATOMO_POOL,
        tags={"site": site.key},
        check_specs=[dg.AssetCheckSpec(CHECK, asset=archive_key(site), description=CHECK_DESCRIPTION)],
        description=(
            f"Matomo's reports of {site.name} (site {site.id}) for the day, recomputed after an import: "
            "`CoreAdminHome.invalidateArchivedReports` for the day, then the archiver chosen by "
            "MATOMO_ARCHIVE_RUNNER (local `core:archive`, AWS ECS + SSM Run Command, or none: Matomo's cron). "
            "Runs only when new hits reached the day since its last archive; otherwise the metadata says why not."
        ),
    )
    def matomo_archive(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        settings = ingest.settings()
        with ingest.ledger() as ledger:
            try:
                result = archiving.archive_day(settings, ledger, site, day)
            except IngestError as exc:
                raise fail(exc) from None
            try:
                outcome = archiving.check_reports(settings, ledger, site, day)
                check_metadata = {"checked": outcome.checked,
                                  **{f"ledger_{k}": v for k, v in outcome.delivered.items()},
                                  **{f"matomo_{k}": v for k, v in outcome.reported.items()},
                                  "delivered": sum(outcome.delivered.values()),
                                  "excluded_by_matomo": outcome.excluded_total,
                                  "excluded_by_reason": dg.MetadataValue.json(outcome.excluded),
                                  "expected_in_reports": sum(outcome.expected.values()),
                                  "robot_agents_delivered": outcome.bot_agents}
                if outcome.reported:
                    check_metadata["in_reports"] = sum(outcome.reported.values())
                if outcome.next_step:
                    check_metadata["next_step"] = dg.MetadataValue.text(outcome.next_step)
                if outcome.unread:
                    check_metadata["settings_not_read"] = dg.MetadataValue.text("; ".join(outcome.unread))
                check = dg.AssetCheckResult(
                    check_name=CHECK, passed=outcome.passed, severity=_severity(), description=outcome.description,
                    metadata=check_metadata,
                )
            except IngestError as exc:
                check = dg.AssetCheckResult(check_name=CHECK, passed=False, severity=_severity(), description=str(exc))
        metadata = {
            "archived": result.archived,
            "reason": result.reason,
            "last_delivery": result.last_delivery or "none",
        }
        if result.archived:
            metadata.update({
                "runner": result.runner,
                "command": dg.MetadataValue.text(result.command or "(none)"),
                "duration_s": round(result.duration_s, 1),
                "output_tail": dg.MetadataValue.md(f"```\n{result.output_tail[-3000:]}\n```"
                                                   if result.output_tail else "_no output_"),
            })
        context.log.info(f"{site.key} {day}: {result.reason}")
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return [matomo_archive]
