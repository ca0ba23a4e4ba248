"""``<site>_ready_days``: ask for the pretable (and its COUNTER metrics) of every day the ledger
says is ready -- Loaded, with its neighbours Loaded when the site waits for them.

The run key names the day and its last delivery, so a day is asked for once per version of its
hits: a day that received new hits (and stepped back to Loaded) is asked for again.
"""


import dagster as dg

from ...pretable import neighbours_ready
from ...vocabulary import DAY_LOADED
from ..site_day import ledger_days_sensor


def build_ready_days_sensor(site, job) -> dg.SensorDefinition:
    def due(ledger, exists, counters):
        counters["waiting"] = 0
        for record in ledger.day_statuses(site.id):
            key = record.day.isoformat()
            if record.status != DAY_LOADED or not exists(key):
                continue
            if neighbours_ready(ledger, site, record.day):  # the reasons it must wait; empty: ready
                counters["waiting"] += 1
                continue
            last = ledger.last_delivery(site.id, record.day)
            yield key, last.isoformat() if last else "none"

    return ledger_days_sensor(
        site, job, stage="pretable", name=f"{site.key}_ready_days", interval_s=60, due=due,
        idle=lambda counters: f"no day ready ({counters.get('waiting', 0)} Loaded day(s) wait for a neighbour)",
        description=(f"Asks for the pretable and COUNTER metrics of {site.name}'s days once they are Loaded"
                     + (" with their neighbours D-1 and D+1" if site.pretable.wait_for_neighbours else "") + "."),
    )
