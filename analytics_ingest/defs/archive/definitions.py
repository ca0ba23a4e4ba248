"""Matomo archiving, per configured site: the asset, its job and the sensor that asks for it."""


import dagster as dg

from ...sites import load_sites
from ..cloudwatch.assets import replay_key
from ..cloudwatch.definitions import replay_sites
from ..opencast.definitions import opencast_events_dep
from .assets import archive_key, build_archive_assets
from .sensors import build_archive_sensor


def archive_job(site):
    return dg.define_asset_job(
        name=f"{site.key}_archive",
        selection=dg.AssetSelection.assets(archive_key(site)),
        description=f"Invalidate and re-archive days of {site.name} in Matomo, then check the reports.",
    )


@dg.definitions
def archive() -> dg.Definitions:
    assets, jobs, sensors = [], [], []
    _config, replayed = replay_sites()
    replayed_keys = {s.key for s in replayed}
    for site in load_sites():
        # Everything else that delivers hits to the site's days: replayed tracker requests, Opencast events.
        extra = [replay_key(site)] if site.key in replayed_keys else []
        if (events := opencast_events_dep(site)) is not None:
            extra.append(events)
        assets += build_archive_assets(site, extra)
        job = archive_job(site)
        jobs.append(job)
        sensors.append(build_archive_sensor(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)
