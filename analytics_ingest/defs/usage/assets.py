"""``<site>/usage_reports``: the configured windows (``ANALYTICS_INGEST_REPORT_WINDOWS``, default
TODAY, 7D, 30D) ending on the partition day, as CSV and TSV files and a Markdown table."""


import datetime as dt

import dagster as dg

from ...errors import IngestError
from ...usage.output import to_markdown
from ...usage.partition import configured_windows, reports_for_day
from ..counter.assets import counter_key
from ..failures import fail
from ..partitions import site_days
from ..resources import IngestResource
from ..weblogs.assets import OWNERS, import_key


def usage_key(site) -> dg.AssetKey:
    return dg.AssetKey([site.key, "usage_reports"])


def build_usage_assets(site, extra_deps=()) -> list[dg.AssetsDefinition]:
    """``extra_deps``: other assets that deliver hits counted in the reports (Opencast events)."""
    deps = [import_key(site)] + ([counter_key(site)] if site.counter.items is not None else []) + list(extra_deps)
    windows = configured_windows()

    @dg.asset(
        key=usage_key(site),
        deps=deps,
        partitions_def=site_days(site),
        group_name=site.key,
        kinds={"csv"},
        owners=OWNERS,
        tags={"site": site.key},
        description=(
            f"Usage of {site.name} over the windows {', '.join(windows)} ending on the day (site-local full days): "
            "visitors, new and returning visitors, sessions, page views, downloads, events, bots and ignored hits, "
            "COUNTER totals, top pages and items. `reports/<site>/<day>/<WINDOW>.csv` and `.tsv` with memex's "
            "`metric, count, description` layout plus detail tables; read from small per-day aggregates, not raw hits."
        ),
    )
    def usage_reports(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        with ingest.ledger() as ledger:
            try:
                result = reports_for_day(ingest.settings(), ledger, site, day, windows)
            except IngestError as exc:
                raise fail(exc) from None
        metadata = {"day_aggregates_built": result.built_days}
        for report, paths in result.reports:
            label = report.window.label
            metadata[f"{label}_csv"] = dg.MetadataValue.path(str(paths["metrics.csv"]))
            metadata[f"{label}_visitors"] = report.value("visitors") or 0
            metadata[f"{label}_pageviews"] = report.value("pageviews") or 0
            if report.missing_days:
                metadata[f"{label}_days_without_data"] = len(report.missing_days)
        first = result.reports[0][0]
        metadata["report"] = dg.MetadataValue.md(
            "\n\n".join(f"**{r.window.label}** ({r.window.first_day} – {r.window.last_day})\n\n{to_markdown(r)}"
                        for r, _ in result.reports))
        context.log.info(f"{site.key} {day}: {len(result.reports)} window(s), first {first.window.label}")
        return dg.MaterializeResult(metadata=metadata)

    return [usage_reports]
