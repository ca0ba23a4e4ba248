"""Pretables and COUNTER metrics, per configured site: assets, job and the ready-days sensor."""


import dagster as dg

from ..location import current_location
from .assets import build_counter_assets, counter_key, pretable_key
from .sensors import build_ready_days_sensor


def pretable_job(site):
    keys = [pretable_key(site)] + ([counter_key(site)] if site.counter.items is not None else [])
    return dg.define_asset_job(
        name=f"{site.key}_pretable",
        selection=dg.AssetSelection.assets(*keys),
        description=f"Build the pretable (and COUNTER metrics, where configured) of a Loaded day of {site.name}.",
    )


@dg.definitions
def counter() -> dg.Definitions:
    assets, jobs, sensors = [], [], []
    for site in current_location().sites:
        assets += build_counter_assets(site)
        job = pretable_job(site)
        jobs.append(job)
        sensors.append(build_ready_days_sensor(site, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)
