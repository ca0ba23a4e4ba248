"""The Dagster code location ``analytics_ingest``: the ``defs/`` folder, autoloaded.

Each source is a folder of ``defs/`` whose ``definitions.py`` returns its definitions; a new source
is a new folder. The environment is read once, here, into the :class:`~.defs.location.Location`
every folder builds from (sites, which sources exist, their settings); :func:`build_defs` builds the
same code location from a given :class:`~.defs.location.Location` (a test's, ``read_location(environ={...})``).
"""

from pathlib import Path

import dagster as dg

from .defs.location import Location, loading, read_location
from .errors import ConfigError


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_defs(location: Location) -> dg.Definitions:
    """The code location of ``location``: the defs folder loaded with ``location`` current, as
    :func:`defs` loads it with the environment's. The resources name the variables set in
    ``location.environ`` as ``dg.EnvVar``, resolved from the process environment at run time: a
    location read from another mapping runs with resources passed explicitly."""
    # The autoloader finds the project by its pyproject.toml ([tool.dg]), so the package must be
    # loaded from the source tree (an editable install, as scripts/bootstrap.sh and the Dockerfile
    # do); a copy in site-packages has no pyproject.toml beside it.
    if not (PROJECT_ROOT / "pyproject.toml").is_file():
        raise ConfigError(f"analytics_ingest is loaded from {PROJECT_ROOT}, which has no pyproject.toml: install the "
                          "project editable from its source tree (pip install -e .) so Dagster can find its defs")
    with loading(location):
        return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(read_location())
