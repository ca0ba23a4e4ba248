"""Errors a person can act on.

Every error raised for bad configuration or bad input derives from :class:`IngestError`; its
message is one line that says what is wrong and what to do. The CLI prints it without a
traceback.
"""


class IngestError(Exception):
    """Base class: a one-line, actionable message."""


class ConfigError(IngestError):
    """Configuration is missing or wrong (env vars, flags, Matomo URL/token/site)."""


class InputError(IngestError):
    """An input file cannot be used (unreadable, changed since last import, unknown format)."""


class LeaseHeld(IngestError):
    """Another import holds the lease on this file."""


class DeliveryError(IngestError):
    """Matomo did not accept a batch within the retry budget; progress up to it is kept."""


class LeaseLost(IngestError):
    """This import's lease on a file expired and was taken by another import (fencing)."""
