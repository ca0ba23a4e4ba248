"""``<site>_archive_days``: ask for ``matomo_archive`` of every Loaded day that received hits since
its last archive (the ledger decides; the run key names the day's last delivery, so each new
version of a day is archived once)."""


import dagster as dg

from ...archiving import archive_needed
from ...vocabulary import DAY_LOADED, DAY_STATUSES
from ..site_day import ledger_days_sensor

COMPLETE = DAY_STATUSES[DAY_STATUSES.index(DAY_LOADED):]


def build_archive_sensor(site, job) -> dg.SensorDefinition:
    def due(ledger, exists, _counters):
        archived = ledger.archive_records(site.id)
        for record in ledger.day_statuses(site.id):
            key = record.day.isoformat()
            if record.status not in COMPLETE or not exists(key):
                continue
            done = archived.get(record.day)
            if done is not None and done["archived_at"] >= record.updated_at:
                continue  # nothing touched the day since its archive
            needed, _reason, last = archive_needed(ledger, site, record.day)
            if needed:
                yield key, last.isoformat()

    return ledger_days_sensor(
        site, job, stage="archive", name=f"{site.key}_archive_days", interval_s=120, due=due,
        idle=lambda _counters: "no day received new hits",
        description=f"Re-archives {site.name}'s days in Matomo once they are Loaded and received new hits.",
    )
