"""How an engine error becomes a Dagster step failure, for every asset, job and schedule op."""


import dagster as dg

from ..errors import IngestError


def fail(exc: IngestError) -> dg.Failure:
    """A step failure with the engine's one-line message, not a traceback."""
    # allow_retries=False: waiting for files or fixing configuration is not helped by retrying now.
    return dg.Failure(description=str(exc), allow_retries=False)
