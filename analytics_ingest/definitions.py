"""The Dagster code location ``analytics_ingest``: the ``defs/`` folder, autoloaded.

Each source is a folder of ``defs/`` whose ``definitions.py`` returns its definitions; a new source
is a new folder. The environment is read once, here, into the :class:`~.defs.location.Location`
every folder builds from (sites, which sources exist, their settings).
"""

from pathlib import Path

import dagster as dg

from .defs.location import loading, read_location


@dg.definitions
def defs() -> dg.Definitions:
    with loading(read_location()):
        return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
