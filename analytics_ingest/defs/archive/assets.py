"""Per-site ``matomo_archive`` asset and its ``reports_match_ledger`` check.

The asset invalidates the day's reports and runs the configured archiver only when new hits
reached the day since its last archive; otherwise it materialises with the reason it skipped, so
the UI shows a decision for every day. The check then reads Matomo's ``VisitsSummary.get`` and
``Actions.get`` for the day and compares them with what the ledger says was delivered.
"""


import dagster as dg

from ... import archiving
from ... import metadata_keys as keys
from ...errors import IngestError
from ..resources import ArchiveRunnerResource, IngestResource
from ..site_day import day_of, engine_step, result, site_day_asset, stage_key
from ..weblogs.assets import import_key


def archive_key(site) -> dg.AssetKey:
    return stage_key(site, "matomo_archive")


CHECK = "reports_match_ledger"
CHECK_DESCRIPTION = (
    "Matomo's page views and downloads of the day (VisitsSummary.get / Actions.get) account for every hit the "
    "ledger delivered, less those Matomo's tracker excluded although it answered them as tracked (its bot IP "
    "ranges, the excluded IPs and user agents): equal, or at least as many when the site also has a JS tracker "
    "(archive: {exact: false}). A silent archive failure shows here, with the next step (the import, or "
    "matomo_archive). It warns instead of failing when MATOMO_ARCHIVE_RUNNER is none: Matomo's own cron may not "
    "have archived yet."
)


def _severity(runner: ArchiveRunnerResource) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if runner.archives_itself else dg.AssetCheckSeverity.WARN


def build_archive_assets(site, extra_deps=()) -> list[dg.AssetsDefinition]:
    """``extra_deps``: other assets that deliver hits to the day (CloudWatch replay, Opencast events)."""

    @site_day_asset(
        site, "matomo_archive",
        deps=[import_key(site), *extra_deps],
        kinds={"matomo"},
        writes_to_matomo=True,
        check_specs=[dg.AssetCheckSpec(CHECK, asset=archive_key(site), description=CHECK_DESCRIPTION)],
        description=(
            f"Matomo's reports of {site.name} (site {site.id}) for the day, recomputed after an import: "
            "`CoreAdminHome.invalidateArchivedReports` for the day, then the archiver chosen by "
            "MATOMO_ARCHIVE_RUNNER (local `core:archive`, AWS ECS + SSM Run Command, or none: Matomo's cron). "
            "Runs only when new hits reached the day since its last archive; otherwise the metadata says why not."
        ),
    )
    def matomo_archive(context: dg.AssetExecutionContext, ingest: IngestResource,
                       archive_runner: ArchiveRunnerResource) -> dg.MaterializeResult:
        day = day_of(context)
        settings = ingest.settings()
        severity = _severity(archive_runner)
        with ingest.ledger() as ledger:
            with engine_step():
                archived = archiving.archive_day(settings, ledger, site, day, runner=archive_runner.runner())
            try:
                outcome = archiving.check_reports(settings, ledger, site, day)
                check_metadata = {"checked": outcome.checked,
                                  **{f"ledger_{k}": v for k, v in outcome.delivered.items()},
                                  **{f"matomo_{k}": v for k, v in outcome.reported.items()},
                                  keys.DELIVERED: sum(outcome.delivered.values()),
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
                    check_name=CHECK, passed=outcome.passed, severity=severity, description=outcome.description,
                    metadata=check_metadata,
                )
            except IngestError as exc:
                check = dg.AssetCheckResult(check_name=CHECK, passed=False, severity=severity, description=str(exc))
        metadata = {
            "archived": archived.archived,
            "reason": archived.reason,
            "last_delivery": archived.last_delivery or "none",
        }
        if archived.archived:
            metadata.update({
                "runner": archived.runner,
                "command": dg.MetadataValue.text(archived.command or "(none)"),
                keys.SECONDS: round(archived.seconds, 1),
                "output_tail": dg.MetadataValue.md(f"```\n{archived.output_tail[-3000:]}\n```"
                                                   if archived.output_tail else "_no output_"),
            })
        context.log.info(f"{site.key} {day}: {archived.reason}")
        return result(metadata, check_results=[check])

    return [matomo_archive]
