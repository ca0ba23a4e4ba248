-- Runs once, when the postgres volume is created: the ledger gets its own database on the
-- same server as Dagster's storage (Alembic keeps its version table apart, see ledger/migrate.py).
CREATE DATABASE analytics_ledger;
