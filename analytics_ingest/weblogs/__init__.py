"""The web-log engine: find settled log files, read them once, deliver each hit to Matomo once.

Mirrors ``analytics_ingest.defs.weblogs`` (the Dagster shell over it): discovery and rsync pulls,
the importer with its lanes and worker processes, the classifier that mirrors ``import_logs.py``'s
rules, and the per-site-day steps (Queue → Partial → Loaded) that the assets call.
"""
