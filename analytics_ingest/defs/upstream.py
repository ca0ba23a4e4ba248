"""What else delivers hits to a site's days besides its logs: the CloudWatch replay and the Opencast
events. The archive and the usage reports depend on them, so the lineage shows every source."""


import dagster as dg

from .location import Location
from .site_day import stage_key

OPENCAST_EVENTS = dg.AssetKey("opencast_matomo_events")


def hit_sources(location: Location, site) -> list:
    """The dependencies of ``site``'s archive and reports on the other assets delivering to it.

    Opencast's days are the server's (OPENCAST_TIMEZONE); when that is the site's zone the days
    map as time windows, otherwise by date (a Dagster time-window mapping cannot cross zones)."""
    deps: list = [stage_key(site, "matomo_replay")] if location.replayed(site) else []
    if location.opencast_events_for(site):
        if location.opencast.timezone == site.timezone:
            deps.append(dg.AssetDep(OPENCAST_EVENTS))
        else:
            deps.append(dg.AssetDep(OPENCAST_EVENTS, partition_mapping=dg.IdentityPartitionMapping()))
    return deps
