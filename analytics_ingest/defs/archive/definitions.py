"""Matomo archiving, per configured site: the asset, its job and the sensor that asks for it."""


import dagster as dg

from ..location import current_location
from ..upstream import hit_sources
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
    location = current_location()
    assets, jobs, sensors = [], [], []
    for site in location.sites:
        assets += build_archive_assets(site, hit_sources(location, site))
        job = archive_job(site)
        jobs.append(job)
        sensors.append(build_archive_sensor(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)
