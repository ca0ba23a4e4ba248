"""``<site>_replay_window``: GDS's ``replay_missed_events.sh START END`` as a Dagster job (the same
engine as ``analytics-ingest replay``), for windows that are not whole days."""


import dagster as dg

from ...cloudwatch.pipeline import replay_window
from ...cloudwatch.window import parse_window
from ..resources import ArchiveRunnerResource, CloudWatchResource, IngestResource
from ..site_day import engine_step


class ReplayWindowConfig(dg.Config):
    start: str  # ISO 8601, e.g. 2024-03-14T09:30:00Z
    end: str


def build_replay_window_job(site) -> dg.JobDefinition:
    @dg.op(name=f"{site.key}_replay_window_op",
           description="Fetch exactly [start, end) from CloudWatch, replay each request once, archive the touched days.")
    def replay_window_op(context: dg.OpExecutionContext, config: ReplayWindowConfig, ingest: IngestResource,
                         cloudwatch: CloudWatchResource, archive_runner: ArchiveRunnerResource) -> None:
        with engine_step():
            settings = cloudwatch.config((site.key,))
            start, end = parse_window(config.start, config.end, max_span=settings.max_span)
            with ingest.ledger() as ledger:
                report = replay_window(ingest.settings(), ledger, settings, site, start, end,
                                       runner=archive_runner.runner())
        for line in report.lines():
            context.log.info(line)
        if report.failed_windows or report.truncated_windows:
            raise dg.Failure(description=report.lines()[0] + "; rerun the same window to complete it")

    @dg.job(name=f"{site.key}_replay_window", tags={"site": site.key},
            description=f"Replay the missed tracker requests of Matomo site {site.id} between two instants (any window).")
    def replay_window_job():
        replay_window_op()

    return replay_window_job
