"""Matomo archiving, per configured site: the asset, its job and the sensor that asks for it."""


import dagster as dg

from ...sites import load_sites
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
    for site in load_sites():
        assets += build_archive_assets(site)
        job = archive_job(site)
        jobs.append(job)
        sensors.append(build_archive_sensor(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)
