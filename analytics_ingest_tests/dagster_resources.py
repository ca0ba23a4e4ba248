"""The resources a test run of the Dagster layer needs, built as the code location builds them.

:func:`configured_resources` is what the in-process tests run with: every value the run depends on
(home, sites file, Matomo, archive runner) configured by the test, as a deployment configures its
resources. :func:`dagster_resources` leaves them unconfigured, so they read the environment (as the
embedded default does): the tests that start ``dagster`` processes, and those proving the default,
use it; a test that wants a specific value passes that resource instead."""

from __future__ import annotations

import os

from dagster_aws.s3 import S3Resource

from analytics_ingest.config import OUTBOX_URL
from analytics_ingest.defs.resources import (ArchiveRunnerResource, CloudWatchResource, IngestResource, MatomoResource,
                                             OpencastResource, RsyncResource)


def dagster_resources(**overrides) -> dict:
    matomo = overrides.pop("matomo", None) or MatomoResource()
    resources = {"matomo": matomo, "ingest": IngestResource(matomo=matomo), "archive_runner": ArchiveRunnerResource(),
                 "rsync": RsyncResource(), "cloudwatch": CloudWatchResource(), "opencast": OpencastResource(),
                 "s3": S3Resource()}
    resources.update(overrides)
    return resources


def configured_resources(home: os.PathLike | str, *, sites_file: os.PathLike | str | None = None,
                         matomo: MatomoResource | None = None, archive_runner: ArchiveRunnerResource | None = None,
                         **overrides) -> dict:
    """Resources configured by the test: the engine's ``home`` and sites file, ``matomo`` (default:
    the offline outbox), ``archive_runner`` (default: none, Matomo's own cron); ``overrides`` replace
    the others (cloudwatch, opencast, s3, rsync)."""
    matomo = matomo or MatomoResource(url=OUTBOX_URL)
    ingest = IngestResource(matomo=matomo, home=os.fspath(home),
                            sites_file=None if sites_file is None else os.fspath(sites_file))
    return dagster_resources(matomo=matomo, ingest=ingest,
                             archive_runner=archive_runner or ArchiveRunnerResource(kind="none"), **overrides)


def sensor_resources(resources: dict | None = None) -> dict:
    """What the sensors read (the ledger through ``ingest``) of ``resources`` (default: unconfigured);
    S3's client resource cannot be built outside a run's context."""
    resources = resources or dagster_resources()
    return {key: resources[key] for key in ("matomo", "ingest")}
