"""The embedded default's offline sources: the bundled sites file, its logs, and recorded days of
CloudWatch Logs and Opencast that the same engine code reads instead of AWS and an engage node.

The code location uses them when it runs as the embedded default: neither ``CLOUDWATCH_SITES`` nor
``OPENCAST_URL`` is set and the sites file is the bundled one. Any of those set: no recording is used.
The functions below take the environment the code location read (``defs/location.py``), never the
process's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
CLOUDWATCH_RECORDING = DEMO_DIR / "cloudwatch-2024-03-14.json"
DEMO_SITE_KEY = "demo_site"
DEMO_SITE_ID = "1"
OPENCAST_START_DATE = "2024-03-14"

# Settings that would reach a service even with recorded sources: never taken into the demo.
_OPENCAST_NETWORK = ("REDIS_URL", "OPENCAST_OUTPUT", "OPENCAST_ADMIN_URL", "OPENCAST_CURSOR", "SQS_QUEUE_NAME")


def is_offline_demo(env: Mapping[str, str]) -> bool:
    """Whether the code location is the embedded default (see the module docstring)."""
    from ..sites import ENV_SITES, demo_sites_path

    if env.get("CLOUDWATCH_SITES", "").strip() or env.get("OPENCAST_URL", "").strip():
        return False
    sites = env.get(ENV_SITES, "").strip()
    if not sites:
        return True
    try:
        return Path(os.path.abspath(os.path.expanduser(sites))).resolve() == demo_sites_path().resolve()
    except OSError:
        return False


def cloudwatch_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the demo site's CloudWatch replay read from the recorded day."""
    env = dict(environ)
    env.pop("CLOUDWATCH_ENDPOINT_URL", None)
    env.update(CLOUDWATCH_SITES=DEMO_SITE_KEY, CLOUDWATCH_API=f"recorded:{CLOUDWATCH_RECORDING}")
    return env


def opencast_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with Opencast read from the recorded files (``file:`` engage node), its actions
    sent as Matomo events to the demo site (to its outbox when no MATOMO_URL is set)."""
    env = {k: v for k, v in environ.items() if k not in _OPENCAST_NETWORK}
    env.update(OPENCAST_URL=f"file:{DEMO_DIR}", OPENCAST_MATOMO_SITE=DEMO_SITE_ID,
               OPENCAST_START_DATE=OPENCAST_START_DATE, OPENCAST_TIMEZONE="UTC")
    env.pop("OPENCAST_USER", None)
    env.pop("OPENCAST_PASSWORD", None)
    return env


__all__ = ["CLOUDWATCH_RECORDING", "DEMO_DIR", "cloudwatch_environ", "is_offline_demo", "opencast_environ"]
