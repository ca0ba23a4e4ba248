"""``<site>/usage_reports``: the configured windows (``ANALYTICS_INGEST_REPORT_WINDOWS``, default
TODAY, 7D, 30D; the location's :class:`~analytics_ingest.usage.settings.UsageSettings`) ending on the
partition day, as CSV and TSV files and a Markdown table."""


import dagster as dg

from ... import metadata_keys as keys
from ...usage.output import to_markdown
from ...usage.partition import reports_for_day
from ...usage.settings import UsageSettings
from ..counter.assets import counter_key
from ..resources import IngestResource
from ..site_day import day_of, engine_step, result, site_day_asset, stage_key
from ..weblogs.assets import import_key


def usage_key(site) -> dg.AssetKey:
    return stage_key(site, "usage_reports")


def build_usage_assets(site, extra_deps=(), usage: UsageSettings | None = None) -> list[dg.AssetsDefinition]:
    """``extra_deps``: other assets that deliver hits counted in the reports (replay, Opencast events);
    ``usage``: the location's usage settings (default: TODAY, 7D, 30D and Opencast's default output)."""
    deps = [import_key(site)] + ([counter_key(site)] if site.counter.items is not None else []) + list(extra_deps)
    usage = usage or UsageSettings()
    windows = usage.windows

    @site_day_asset(
        site, "usage_reports",
        deps=deps,
        kinds={"csv"},
        description=(
            f"Usage of {site.name} over the windows {', '.join(windows)} ending on the day (site-local full days): "
            "visitors, new and returning visitors, sessions, page views, downloads, events, bots and ignored hits, "
            "COUNTER totals, top pages and items. `reports/<site>/<day>/<WINDOW>.csv` and `.tsv` with memex's "
            "`metric, count, description` layout plus detail tables; read from small per-day aggregates, not raw hits."
        ),
    )
    def usage_reports(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = day_of(context)
        with ingest.ledger() as ledger, engine_step():
            reports = reports_for_day(ingest.settings(), ledger, site, day, usage)
        metadata = {"day_aggregates_built": reports.built_days, keys.DAY_STATUS: reports.day_status}
        for report, paths in reports.reports:
            label = report.window.label
            metadata[f"{label}_csv"] = dg.MetadataValue.path(str(paths["metrics.csv"]))
            metadata[f"{label}_visitors"] = report.value("visitors") or 0
            metadata[f"{label}_pageviews"] = report.value("pageviews") or 0
            if report.missing_days:
                metadata[f"{label}_days_without_data"] = len(report.missing_days)
        first = reports.reports[0][0]
        metadata["report"] = dg.MetadataValue.md(
            "\n\n".join(f"**{r.window.label}** ({r.window.first_day} – {r.window.last_day})\n\n{to_markdown(r)}"
                        for r, _ in reports.reports))
        context.log.info(f"{site.key} {day}: {len(reports.reports)} window(s), first {first.window.label}")
        return result(metadata)

    return [usage_reports]
