"""CloudWatch replay for the sites named in ``CLOUDWATCH_SITES``. Daily assets, their job, and the
ad hoc window job. The embedded default (no ``CLOUDWATCH_SITES`` nor ``OPENCAST_URL``, the bundled
sites file) replays the demo site from a recorded day (``analytics_ingest/demo``), offline."""


import dagster as dg
from dagster_aws.s3 import S3Resource

from ...cloudwatch.pipeline import CloudwatchConfig
from ...demo import cloudwatch_environ, is_offline_demo
from ...sites import load_sites
from ..archive.assets import archive_key
from ..weblogs.schedules import yesterday_schedule
from .assets import build_cloudwatch_assets, missed_key, replay_key
from .jobs import build_replay_window_job


def replay_sites():
    config = CloudwatchConfig.from_env(cloudwatch_environ() if is_offline_demo() else None)
    return config, [site for site in load_sites() if config.covers(site)]


@dg.definitions
def cloudwatch() -> dg.Definitions:
    config, sites = replay_sites()
    assets, jobs = [], []
    schedules = []
    for site in sites:
        assets += build_cloudwatch_assets(site, config)
        daily = dg.define_asset_job(
            name=f"{site.key}_replay",
            selection=dg.AssetSelection.assets(missed_key(site), replay_key(site), archive_key(site)),
            description=f"Fetch, replay and re-archive days of Matomo site {site.id} from CloudWatch.",
        )
        jobs.append(daily)
        jobs.append(build_replay_window_job(site, config))
        # Nightly, after the day ended in the site's zone: the tracker's 5xx of yesterday are in
        # CloudWatch by then; a rerun of a replayed day sends nothing twice.
        schedules.append(yesterday_schedule(
            site, daily, name=f"{site.key}_replay_daily", cron="30 1 * * *",
            description=f"Every night at 01:30 ({site.timezone}), replay yesterday's missed tracker requests of "
                        f"{site.name} from CloudWatch and re-archive the day."))
    # dagster-aws's S3 resource: the standard credential chain; used only when
    # ANALYTICS_INGEST_CLOUDWATCH_S3 names a bucket, so the embedded default needs no AWS (its
    # replay reads a recorded log group).
    resources = {"s3": S3Resource()} if sites else {}
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, resources=resources)
