"""The one concurrency pool: every step that writes to Matomo runs in ``matomo``.

Whatever launches the run (a sensor, a schedule, *Materialize*, a backfill), the pool caps Matomo
writers across all sites (the instance's ``concurrency.pools.default_limit``, 2 in dagster.yaml):
the import, the CloudWatch replay, the Opencast events and the archiver. One writer *per site* is
not a Dagster setting: the engine takes the site's writer lock in the ledger
(:mod:`analytics_ingest.site_writer`), so it also holds against a CLI import started by hand.
"""

MATOMO_POOL = "matomo"
