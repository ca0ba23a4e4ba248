"""analytics_ingest: exactly-once import of web analytics events into Matomo.

The package root is the plain-Python engine (no Dagster imports); ``analytics_ingest.defs``
is the thin Dagster layer and ``analytics_ingest.cli.main`` the command-line shell.
"""

__version__ = "0.1.0"
