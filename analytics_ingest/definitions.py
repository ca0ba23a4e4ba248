"""The Dagster code location ``analytics_ingest``: every defs module, merged explicitly.

The modules are imported, not their ``@dg.definitions`` functions: Dagster refuses a code
location module with more than one such function in its namespace.
"""

import dagster as dg

from .defs import resources as resources_module
from .defs.archive import definitions as archive_module
from .defs.cloudwatch import definitions as cloudwatch_module
from .defs.opencast import definitions as opencast_module
from .defs.usage import definitions as usage_module
from .defs.counter import definitions as counter_module
from .defs.weblogs import definitions as weblogs_module


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        resources_module.resources(),
        weblogs_module.weblogs(),
        counter_module.counter(),
        archive_module.archive(),
        cloudwatch_module.cloudwatch(),
        opencast_module.opencast(),
        usage_module.usage(),
    )
