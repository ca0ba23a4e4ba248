"""The harvester's environment variables, read and checked in one place.

:meth:`OpencastSettings.from_env` is the only reader of the ``OPENCAST_*`` variables; the shells
(the CLI, the Dagster resources) call it and the engine takes the typed settings. Numbers are
parsed here, once: the original compared an int with the env *string* and its span guard never
fired. No import of the harvester or the enricher here, so the CLI's parser stays fast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import DEFAULT_HOME, ENV_HOME
from ..errors import ConfigError

ENV_URL = "OPENCAST_URL"  # the engage node, or file:<folder> of recorded answers (opencast.recorded)
ENV_USER = "OPENCAST_USER"
ENV_PASSWORD = "OPENCAST_PASSWORD"
ENV_ADMIN_URL = "OPENCAST_ADMIN_URL"  # optional: admin node, for live start/stop (episode asset)
ENV_TIMEZONE = "OPENCAST_TIMEZONE"  # zone in which the server reads start/end/day; default UTC
ENV_CURSOR = "OPENCAST_CURSOR"  # file path or s3://bucket/key; default <home>/opencast/cursor.json
ENV_CACHE_EXPIRE = "EPISODE_CACHE_EXPIRE"
ENV_REDIS_URL = "REDIS_URL"
ENV_MAX_SPAN = "MAX_START_END_SPAN"
ENV_QUEUE = "SQS_QUEUE_NAME"  # the original's default destination
ENV_OUTPUT = "OPENCAST_OUTPUT"  # sqs://queue, a queue URL, or a file path ({day} is replaced)
ENV_MATOMO_SITE = "OPENCAST_MATOMO_SITE"  # optional: Matomo idsite that receives the actions as events

# Defaults of the enricher and the harvester, here so that reading the settings imports neither.
DEFAULT_CACHE_EXPIRE = 1800  # seconds; the original's code default (its README said 15m)
DEFAULT_MAX_SPAN = 3 * 3600  # seconds; the cron ran every 2 minutes, so 3 h means "fell far behind"


def parse_seconds(name: str, value: str | None, default: float | None) -> float | None:
    """A non-negative number of seconds; unset → default; 0 → None ("off") for the span guard."""
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if number < 0 or number != number:
        raise ConfigError(f"{name} must be 0 or more seconds, got {value!r}")
    return number


def parse_matomo_site(text: str | None) -> int | None:
    """``OPENCAST_MATOMO_SITE``: a Matomo site id, or None when unset."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{ENV_MATOMO_SITE} must be a Matomo site id (a whole number), got {text!r}")
    return int(text)


@dataclass(frozen=True)
class OpencastSettings:
    url: str
    user: str
    password: str = field(repr=False)  # never in a repr, a log line or an error
    home: Path
    cursor: str
    cache_expire: float = DEFAULT_CACHE_EXPIRE
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    max_span: float | None = DEFAULT_MAX_SPAN
    admin_url: str | None = None
    server_tz: dt.tzinfo = dt.timezone.utc
    queue: str | None = None
    output: str | None = None  # OPENCAST_OUTPUT as set (None: a JSON-lines file per day under home)
    matomo_site: int | None = None  # OPENCAST_MATOMO_SITE

    @property
    def episode_cache_path(self) -> Path:
        return self.home / "opencast" / "episodes-cache.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, home: str | None = None,
                 cursor: str | None = None) -> OpencastSettings:
        recorded = str(env.get(ENV_URL) or "").startswith("file:")  # recorded answers: no user needed
        missing = [n for n in ((ENV_URL,) if recorded else (ENV_URL, ENV_USER, ENV_PASSWORD)) if not env.get(n)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set; export the engage node URL and the digest REST user")
        home_path = Path(home or env.get(ENV_HOME) or DEFAULT_HOME)
        max_span = parse_seconds(ENV_MAX_SPAN, env.get(ENV_MAX_SPAN), DEFAULT_MAX_SPAN)
        tz_name = env.get(ENV_TIMEZONE) or "UTC"
        try:
            server_tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{ENV_TIMEZONE} must be an IANA zone such as America/New_York, got {tz_name!r}") from None
        return cls(
            url=env[ENV_URL],
            user=env.get(ENV_USER) or "",
            password=env.get(ENV_PASSWORD) or "",
            home=home_path,
            cursor=cursor or env.get(ENV_CURSOR) or str(home_path / "opencast" / "cursor.json"),
            cache_expire=parse_seconds(ENV_CACHE_EXPIRE, env.get(ENV_CACHE_EXPIRE), DEFAULT_CACHE_EXPIRE),
            redis_url=env.get(ENV_REDIS_URL) or None,
            max_span=max_span or None,
            admin_url=env.get(ENV_ADMIN_URL) or None,
            server_tz=server_tz,
            queue=env.get(ENV_QUEUE) or None,
            output=env.get(ENV_OUTPUT) or None,
            matomo_site=parse_matomo_site(env.get(ENV_MATOMO_SITE)),
        )
