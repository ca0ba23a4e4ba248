"""Resources: one typed resource per external system, built once per load from the :class:`Location`.

Each field left unset (None) falls back at run time to the engine's environment variable of the same
meaning (the names in the field comments), so ``IngestResource(matomo=MatomoResource())`` runs the
embedded default offline with no configuration, as the CLI does. The instances registered here take
every variable that is set when the code location loads as a ``dg.EnvVar``: the UI and the run
config show the variable's name, never a token, a password or a URL carrying one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import dagster as dg
from dagster_aws.s3 import S3Resource

from ..cloudwatch.pipeline import CloudwatchConfig
from ..cloudwatch.store import ENV_S3
from ..cloudwatch.window import ENV_MAX_SPAN_HOURS
from ..config import (ENV_GEOIP_DB, ENV_HOME, ENV_LEDGER_URL, ENV_MATOMO_DB_PREFIX, ENV_MATOMO_DB_URL, ENV_MATOMO_TOKEN,
                      ENV_MATOMO_URL, Settings, load_settings)
from ..engine import open_ledger
from ..matomo import archive as archive_runners
from ..opencast.settings import OpencastSettings
from ..sites import load_sites
from ..weblogs.rsync import DEFAULT_TIMEOUT as DEFAULT_RSYNC_TIMEOUT
from ..weblogs.rsync import ENV_TIMEOUT as ENV_RSYNC_TIMEOUT
from .location import Location, current_location


class MatomoResource(dg.ConfigurableResource):
    """Matomo's tracking and reporting APIs (and optionally its MySQL, for look-ups and pretables)."""

    url: str | None = None  # MATOMO_URL; unset: the offline outbox
    token: str | None = None  # MATOMO_API_TOKEN (a secret: pass a dg.EnvVar)
    db_url: str | None = None  # MATOMO_DB_URL (carries a password: pass a dg.EnvVar)
    db_table_prefix: str | None = None  # MATOMO_DB_TABLE_PREFIX


class IngestResource(dg.ConfigurableResource):
    """The engine's state (home, ledger), its sites file and the Matomo it delivers to."""

    matomo: MatomoResource
    home: str | None = None  # ANALYTICS_INGEST_HOME
    ledger_url: str | None = None  # ANALYTICS_INGEST_LEDGER_URL (may carry a password: pass a dg.EnvVar)
    sites_file: str | None = None  # ANALYTICS_INGEST_SITES; the location's file, so both read the same
    geoip_db: str | None = None  # ANALYTICS_INGEST_GEOIP_DB: the pretables' geolocation database

    def settings(self) -> Settings:
        overrides = {ENV_MATOMO_DB_URL: self.matomo.db_url, ENV_MATOMO_DB_PREFIX: self.matomo.db_table_prefix,
                     ENV_GEOIP_DB: self.geoip_db}
        environ = {**os.environ, **{k: v for k, v in overrides.items() if v is not None}}
        return load_settings(home=self.home, ledger_url=self.ledger_url, matomo_url=self.matomo.url,
                             matomo_token=self.matomo.token, environ=environ)

    def sites(self):
        return load_sites(self.sites_file)

    @contextlib.contextmanager
    def ledger(self):
        ledger = open_ledger(self.settings())
        try:
            yield ledger
        finally:
            ledger.close()


class ArchiveRunnerResource(dg.ConfigurableResource):
    """What recomputes Matomo's reports after an import: ``local`` core:archive, ``ssm`` (ECS), ``none``."""

    kind: str | None = None  # MATOMO_ARCHIVE_RUNNER
    command: str | None = None  # MATOMO_ARCHIVE_COMMAND
    cwd: str | None = None  # MATOMO_ARCHIVE_CWD
    timeout_s: str | None = None  # MATOMO_ARCHIVE_TIMEOUT

    def _environ(self) -> Mapping[str, str]:
        fields = {archive_runners.ENV_RUNNER: self.kind, archive_runners.ENV_COMMAND: self.command,
                  archive_runners.ENV_CWD: self.cwd, archive_runners.ENV_TIMEOUT: self.timeout_s}
        return {**os.environ, **{k: v for k, v in fields.items() if v is not None}}

    def settings(self) -> archive_runners.ArchiveSettings:
        return archive_runners.ArchiveSettings.from_env(self._environ())

    def runner(self):
        """The configured runner, built when first used: a day that needs no archive never reads
        (nor rejects) the runner's settings."""
        return archive_runners.LazyRunner(lambda: self.settings().runner())

    @property
    def archives_itself(self) -> bool:
        """False with ``none``: Matomo's own cron archives later, so a short report is only a warning."""
        return (self._environ().get(archive_runners.ENV_RUNNER) or "none").strip().lower() not in ("", "none")


class CloudWatchResource(dg.ConfigurableResource):
    """CloudWatch Logs, where nginx logged the tracker requests Matomo answered with 5xx (AWS
    credentials: the standard chain)."""

    api: str | None = None  # CLOUDWATCH_API: insights, filter or recorded:<file>; unset: the environment's
    log_group: str | None = None  # CLOUDWATCH_LOG_GROUP
    stream_pattern: str | None = None  # CLOUDWATCH_STREAM_PATTERN
    min_status: int | None = None  # CLOUDWATCH_MIN_STATUS
    excluded_agents: list[str] | None = None  # CLOUDWATCH_EXCLUDED_AGENTS
    threads: int | None = None  # NUM_THREADS
    window_seconds: int | None = None  # PERIOD_WIDTH_IN_SECONDS
    endpoint_url: str | None = None  # CLOUDWATCH_ENDPOINT_URL (a local emulator)
    events_s3: str | None = None  # ANALYTICS_INGEST_CLOUDWATCH_S3: keep fetched events in s3://bucket/prefix
    max_span_hours: str | None = None  # ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS: the longest ad hoc window

    @classmethod
    def from_config(cls, config: CloudwatchConfig, environ: Mapping[str, str]) -> CloudWatchResource:
        return cls(api=f"recorded:{config.recording}" if config.api == "recorded" else config.api,
                   log_group=config.log_group, stream_pattern=config.stream_pattern, min_status=config.min_status,
                   excluded_agents=list(config.excluded_agents), threads=config.threads,
                   window_seconds=config.window_seconds, endpoint_url=config.endpoint_url,
                   events_s3=_env(environ, ENV_S3), max_span_hours=_env(environ, ENV_MAX_SPAN_HOURS))

    def config(self, sites: tuple[str, ...] = ()) -> CloudwatchConfig:
        fields = {"CLOUDWATCH_API": self.api, "CLOUDWATCH_LOG_GROUP": self.log_group,
                  "CLOUDWATCH_STREAM_PATTERN": self.stream_pattern, "CLOUDWATCH_ENDPOINT_URL": self.endpoint_url,
                  "CLOUDWATCH_MIN_STATUS": _text(self.min_status), "NUM_THREADS": _text(self.threads),
                  "PERIOD_WIDTH_IN_SECONDS": _text(self.window_seconds),
                  "CLOUDWATCH_EXCLUDED_AGENTS": None if self.excluded_agents is None else ",".join(self.excluded_agents),
                  ENV_S3: self.events_s3, ENV_MAX_SPAN_HOURS: self.max_span_hours,
                  "CLOUDWATCH_SITES": ",".join(sites)}
        # Left unconfigured (no api), the resource reads the process environment, as the CLI does.
        base = dict(os.environ) if self.api is None else {}
        return CloudwatchConfig.from_env({**base, **{k: v for k, v in fields.items() if v is not None}})

    def s3_client(self, s3: S3Resource):
        """dagster-aws's S3 client when the events are kept in S3; None keeps them under the home."""
        return s3.get_client() if self.config().events_s3 else None


# The Opencast variables a resource carries; the secrets among them arrive as dg.EnvVar.
OPENCAST_FIELDS = {"url": "OPENCAST_URL", "user": "OPENCAST_USER", "password": "OPENCAST_PASSWORD",
                   "admin_url": "OPENCAST_ADMIN_URL", "timezone": "OPENCAST_TIMEZONE", "start_date": "OPENCAST_START_DATE",
                   "cursor": "OPENCAST_CURSOR", "output": "OPENCAST_OUTPUT", "matomo_site": "OPENCAST_MATOMO_SITE",
                   "cache_expire": "EPISODE_CACHE_EXPIRE", "redis_url": "REDIS_URL", "max_span": "MAX_START_END_SPAN",
                   "queue": "SQS_QUEUE_NAME"}
OPENCAST_SECRETS = ("password", "redis_url")


class OpencastResource(dg.ConfigurableResource):
    """An Opencast engage node (digest auth) and where its user actions go: SQS, files, Redis cache.

    Left entirely unset (no ``url``), it reads the process environment as the CLI does."""

    url: str | None = None
    user: str | None = None
    password: str | None = None
    admin_url: str | None = None
    timezone: str | None = None
    start_date: str | None = None
    cursor: str | None = None
    output: str | None = None
    matomo_site: str | None = None
    cache_expire: str | None = None
    redis_url: str | None = None
    max_span: str | None = None
    queue: str | None = None

    @classmethod
    def from_environ(cls, settings: Mapping[str, str], process: Mapping[str, str]) -> OpencastResource:
        """``settings``: the variables the assets run with; those also in the process environment
        are taken as dg.EnvVar when secret (the recorded demo's are not secrets)."""
        values = {}
        for name, var in OPENCAST_FIELDS.items():
            if not settings.get(var):
                continue
            secret = name in OPENCAST_SECRETS and process.get(var) == settings.get(var)
            values[name] = dg.EnvVar(var) if secret else settings[var]
        return cls(**values)

    def _environ(self) -> Mapping[str, str]:
        fields = {var: getattr(self, name) for name, var in OPENCAST_FIELDS.items()}
        base = {} if self.url else dict(os.environ)
        return {**base, **{k: v for k, v in fields.items() if v is not None}}

    def settings(self, ingest: IngestResource, **overrides) -> OpencastSettings:
        return OpencastSettings.from_env(self._environ(), home=str(ingest.settings().home), **overrides)


class RsyncResource(dg.ConfigurableResource):
    """The remote the sites' rsync commands pull their logs from."""

    timeout_s: float | None = None  # ANALYTICS_INGEST_RSYNC_TIMEOUT, default 900

    def timeout(self) -> float:
        return self.timeout_s if self.timeout_s is not None else float(os.environ.get(ENV_RSYNC_TIMEOUT) or DEFAULT_RSYNC_TIMEOUT)


def _env(environ: Mapping[str, str], name: str):
    """``name`` as a dg.EnvVar when it is set at load, else None (the engine's default)."""
    return dg.EnvVar(name) if environ.get(name) else None


def _text(value) -> str | None:
    return None if value is None else str(value)


def build_resources(location: Location) -> dict:
    env = location.environ
    matomo = MatomoResource(url=_env(env, ENV_MATOMO_URL), token=_env(env, ENV_MATOMO_TOKEN),
                            db_url=_env(env, ENV_MATOMO_DB_URL), db_table_prefix=_env(env, ENV_MATOMO_DB_PREFIX))
    resources = {
        "matomo": matomo,
        "ingest": IngestResource(matomo=matomo, home=_env(env, ENV_HOME), ledger_url=_env(env, ENV_LEDGER_URL),
                                 sites_file=str(location.sites_file), geoip_db=_env(env, ENV_GEOIP_DB)),
        "archive_runner": ArchiveRunnerResource(
            kind=_env(env, archive_runners.ENV_RUNNER), command=_env(env, archive_runners.ENV_COMMAND),
            cwd=_env(env, archive_runners.ENV_CWD), timeout_s=_env(env, archive_runners.ENV_TIMEOUT)),
        "rsync": RsyncResource(),
    }
    if location.cloudwatch is not None:
        # dagster-aws's S3 resource: the standard credential chain, used only when the events are
        # kept in S3, so the embedded default needs no AWS (its replay reads a recorded log group).
        resources["cloudwatch"] = CloudWatchResource.from_config(location.cloudwatch, env)
        resources["s3"] = S3Resource()
    if location.opencast is not None:
        resources["opencast"] = OpencastResource.from_environ(location.opencast.environ, env)
    return resources


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(current_location()))
