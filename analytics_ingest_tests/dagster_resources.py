"""The resources a test run of the Dagster layer needs, built as the code location builds them.

Each is left unconfigured, so it reads the environment the test set up (as the embedded default
does); a test that wants a specific value passes that resource instead."""

from __future__ import annotations

from dagster_aws.s3 import S3Resource

from analytics_ingest.defs.resources import (ArchiveRunnerResource, CloudWatchResource, IngestResource, MatomoResource,
                                             OpencastResource, RsyncResource)


def dagster_resources(**overrides) -> dict:
    matomo = overrides.pop("matomo", None) or MatomoResource()
    resources = {"matomo": matomo, "ingest": IngestResource(matomo=matomo), "archive_runner": ArchiveRunnerResource(),
                 "rsync": RsyncResource(), "cloudwatch": CloudWatchResource(), "opencast": OpencastResource(),
                 "s3": S3Resource()}
    resources.update(overrides)
    return resources


def sensor_resources() -> dict:
    """What the sensors read (the ledger through ``ingest``); S3's client resource cannot be built
    outside a run's context."""
    resources = dagster_resources()
    return {key: resources[key] for key in ("matomo", "ingest")}
