"""The Dagster code location ``analytics_ingest``: every defs module, merged explicitly."""

from __future__ import annotations

import dagster as dg

from .defs.resources import resources
from .defs.weblogs.definitions import weblogs


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(resources(), weblogs())
