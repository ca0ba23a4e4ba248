"""CloudWatch replay for the sites the location's CloudWatch settings cover (``CLOUDWATCH_SITES``):
daily assets, their job and nightly schedule, and the ad hoc window job. The embedded default
replays the demo site from a recorded day (``analytics_ingest/demo``), offline."""


import dagster as dg

from ..archive.assets import archive_key
from ..location import current_location
from ..site_day import yesterday_schedule
from .assets import build_cloudwatch_assets, missed_key, replay_key
from .jobs import build_replay_window_job


@dg.definitions
def cloudwatch() -> dg.Definitions:
    location = current_location()
    assets, jobs, schedules = [], [], []
    for site in location.replayed_sites:
        assets += build_cloudwatch_assets(site, location.cloudwatch)
        daily = dg.define_asset_job(
            name=f"{site.key}_replay",
            selection=dg.AssetSelection.assets(missed_key(site), replay_key(site), archive_key(site)),
            description=f"Fetch, replay and re-archive days of Matomo site {site.id} from CloudWatch.",
        )
        jobs += [daily, build_replay_window_job(site)]
        # Nightly, after the day ended in the site's zone: the tracker's 5xx of yesterday are in
        # CloudWatch by then; a rerun of a replayed day sends nothing twice.
        schedules.append(yesterday_schedule(
            site, daily, name=f"{site.key}_replay_daily", cron="30 1 * * *",
            description=f"Every night at 01:30 ({site.timezone}), replay yesterday's missed tracker requests of "
                        f"{site.name} from CloudWatch and re-archive the day."))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
