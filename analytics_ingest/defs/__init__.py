"""The Dagster layer: assets, checks, sensors, schedules and resources wired to the engine.

Nothing here does work of its own; every step calls ``analytics_ingest.weblogs.pipeline`` and friends.
"""
