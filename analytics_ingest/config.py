"""Settings from environment variables, overridable by CLI flags.

Names kept from the systems this project replaces: ``MATOMO_URL`` and ``MATOMO_API_TOKEN`` are
the ones GDS's replay script used.

Where the hits go (the *destination*, which owns the delivery state in the ledger):

* ``MATOMO_URL`` unset (and no token): the embedded default, offline — requests go to an outbox
  under the state directory instead of Matomo;
* ``MATOMO_URL=outbox:``: the same, asked for explicitly (production configurations say so);
* ``MATOMO_URL=https://…``: that Matomo;
* ``MATOMO_URL`` set but empty, or a token without a URL: a configuration mistake (a deployment
  whose secret did not arrive), refused with one line instead of silently going offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

ENV_HOME = "ANALYTICS_INGEST_HOME"
ENV_LEDGER_URL = "ANALYTICS_INGEST_LEDGER_URL"
ENV_MATOMO_URL = "MATOMO_URL"
ENV_MATOMO_TOKEN = "MATOMO_API_TOKEN"
ENV_MATOMO_DB_URL = "MATOMO_DB_URL"  # optional: Matomo's MySQL, for fast pv_id look-ups
ENV_MATOMO_DB_PREFIX = "MATOMO_DB_TABLE_PREFIX"
ENV_GEOIP_DB = "ANALYTICS_INGEST_GEOIP_DB"  # optional: a MaxMind-format database, for the pretables' coordinates
ENV_SITES = "ANALYTICS_INGEST_SITES"  # the sites file (analytics_ingest.sites)
ENV_PARALLEL_MIN_BYTES = "ANALYTICS_INGEST_PARALLEL_MIN_BYTES"  # files from this size on use worker processes
DEFAULT_PARALLEL_MIN_BYTES = 8 << 20

DEFAULT_HOME = ".analytics_ingest"  # relative to the working directory
OUTBOX_URL = "outbox:"  # MATOMO_URL value that asks for the offline outbox explicitly


@dataclass(frozen=True)
class Settings:
    home: Path
    ledger_url: str
    matomo_url: str | None = None
    # repr=False: the token must never reach a log line or an exception message.
    matomo_token: str | None = field(default=None, repr=False)
    matomo_db_url: str | None = field(default=None, repr=False)
    matomo_db_prefix: str = "matomo_"
    geoip_db: str | None = None  # the pretables' geolocation database; None: no coordinates
    parallel_min_bytes: int = DEFAULT_PARALLEL_MIN_BYTES  # smaller files are parsed in the importing process

    @property
    def offline(self) -> bool:
        return not self.matomo_url

    @property
    def destination(self) -> str:
        """Who owns the delivery state in the ledger: ``outbox`` or ``matomo:<base URL>``."""
        return "outbox" if self.offline else f"matomo:{self.matomo_url}"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


def _clean_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"MATOMO_URL must be an http(s) URL such as https://matomo.example.org, got {url!r}"
        )
    if parts.username or parts.password:
        raise ConfigError("MATOMO_URL must not contain credentials; set MATOMO_API_TOKEN instead")
    # Accept the URL of the UI, of index.php or of matomo.php: we need the base.
    path = parts.path
    for suffix in ("/index.php", "/matomo.php", "/piwik.php"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    # One spelling per Matomo (it names the destination in the ledger): scheme and host are
    # case-insensitive, the default port is implied.
    netloc = parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}[parts.scheme.lower()]
    if netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return f"{parts.scheme.lower()}://{netloc}{path.rstrip('/')}"


def load_settings(
    *,
    home: str | os.PathLike | None = None,
    ledger_url: str | None = None,
    matomo_url: str | None = None,
    matomo_token: str | None = None,
    environ: dict | None = None,
) -> Settings:
    """Settings from flags (when given) over env vars over defaults."""
    env = os.environ if environ is None else environ
    home_path = Path(home or env.get(ENV_HOME) or DEFAULT_HOME)
    ledger = ledger_url or env.get(ENV_LEDGER_URL) or f"sqlite:///{home_path / 'ledger.sqlite'}"
    url = matomo_url if matomo_url is not None else env.get(ENV_MATOMO_URL)
    token = matomo_token or env.get(ENV_MATOMO_TOKEN) or None
    if url is not None and not url.strip():
        raise ConfigError(
            f"{ENV_MATOMO_URL} is set but empty; set it to your Matomo's URL (https://matomo.example.org), "
            f"or to {OUTBOX_URL} to write the requests to the offline outbox"
        )
    if url is None and token:
        raise ConfigError(
            f"{ENV_MATOMO_TOKEN} is set but {ENV_MATOMO_URL} is not; set {ENV_MATOMO_URL} to your Matomo's URL, "
            f"or to {OUTBOX_URL} to write the requests to the offline outbox"
        )
    if url is not None and url.strip().lower() == OUTBOX_URL:
        url, token = None, None
    elif url:
        url = _clean_url(url.strip())
        if not token:
            raise ConfigError(
                "MATOMO_URL is set but MATOMO_API_TOKEN is not; set it to a token with write access "
                "to the site (Matomo: Personal > Security > Auth tokens)"
            )
    return Settings(
        home=home_path,
        ledger_url=ledger,
        matomo_url=url,
        matomo_token=token,
        matomo_db_url=env.get(ENV_MATOMO_DB_URL) or None,
        matomo_db_prefix=env.get(ENV_MATOMO_DB_PREFIX, "matomo_"),
        geoip_db=env.get(ENV_GEOIP_DB) or None,
        parallel_min_bytes=_non_negative_int(env, ENV_PARALLEL_MIN_BYTES, DEFAULT_PARALLEL_MIN_BYTES),
    )


def _non_negative_int(env, name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name}={text!r} is not a whole number of bytes >= 0; unset it for the default ({default})")
    return value
