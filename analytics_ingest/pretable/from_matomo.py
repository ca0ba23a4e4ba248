"""Pretable rows straight from Matomo's raw log tables (SciELO's ``extract_pretable``).

One query per day: ``log_link_visit_action`` joined to ``log_visit`` (browser, IP, location) and
``log_action`` (the URL), for the site and the UTC ``server_time`` range of the site-local day.
Differences from SciELO's SQL, on purpose:

* the IP is decoded in Python from ``location_ip`` (VARBINARY(16)): 4 bytes IPv4, 16 bytes IPv6.
  MySQL's ``inet_ntoa`` only knows IPv4 and turned every IPv6 visitor into NULL;
* only page views and downloads (``log_action.type`` 1 and 3), the actions a pretable is for;
  SciELO's LEFT JOIN let events and site searches in with a NULL or unrelated name;
* rows are streamed with a server-side cursor, ordered by IP as SciELO did (the COUNTER step
  groups by user), so a day of any size is read in constant memory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Iterator

from ..errors import ConfigError

ACTION_TYPES = (1, 3)  # Matomo's Action::TYPE_PAGE_URL, Action::TYPE_DOWNLOAD
_PREFIX = re.compile(r"[A-Za-z0-9_]*")


def decode_ip(raw) -> str | None:
    """Matomo's binary ``location_ip`` as text (IPv4 or IPv6); None when empty or malformed."""
    if raw is None:
        return None
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if len(raw) not in (4, 16):
        return None
    address = ipaddress.ip_address(bytes(raw))
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _number(value) -> float | None:
    return None if value is None else float(value)


def pretable_query(prefix: str):
    import sqlalchemy as sa

    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"MATOMO_DB_TABLE_PREFIX={prefix!r} must be letters, digits and _ (Matomo's default is matomo_)")
    return sa.text(
        f"SELECT a.server_time, v.config_browser_name, v.config_browser_version, v.location_ip, "
        f"v.location_latitude, v.location_longitude, act.name "
        f"FROM {prefix}log_link_visit_action a "
        f"JOIN {prefix}log_visit v ON v.idvisit = a.idvisit "
        f"JOIN {prefix}log_action act ON act.idaction = a.idaction_url "
        f"WHERE a.idsite = :idsite AND a.server_time >= :start AND a.server_time < :end "
        f"AND act.type IN :types "
        f"ORDER BY v.location_ip, a.server_time"
    ).bindparams(sa.bindparam("types", expanding=True))


def matomo_rows(db_url: str, prefix: str, idsite: int, start: dt.datetime, end: dt.datetime) -> Iterator[tuple]:
    """Rows for ``idsite`` with ``start <= server_time < end`` (aware UTC datetimes)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(db_url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(f"MATOMO_DB_URL is not a usable SQLAlchemy URL ({type(exc).__name__}); "
                          "write it like mysql+pymysql://user@host:3306/matomo") from None
    params = {
        "idsite": int(idsite),
        "start": start.astimezone(dt.timezone.utc).replace(tzinfo=None),
        "end": end.astimezone(dt.timezone.utc).replace(tzinfo=None),
        "types": list(ACTION_TYPES),
    }
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=5000).execute(
                pretable_query(prefix), params)
            for server_time, browser, version, ip, lat, lon, name in result:
                if isinstance(server_time, dt.datetime):
                    server_time = server_time.strftime("%Y-%m-%d %H:%M:%S")
                yield (str(server_time), browser or None, version or None, decode_ip(ip),
                       _number(lat), _number(lon), name or None)
    except sa.exc.OperationalError as exc:
        code = exc.orig.args[0] if getattr(exc, "orig", None) is not None and exc.orig.args else "?"
        raise ConfigError(f"cannot read Matomo's log tables through MATOMO_DB_URL (MySQL error {code}); "
                          "check the URL, the user's SELECT rights and MATOMO_DB_TABLE_PREFIX") from None
    except sa.exc.ProgrammingError as exc:
        code = exc.orig.args[0] if getattr(exc, "orig", None) is not None and exc.orig.args else "?"
        raise ConfigError(f"Matomo's log tables are not where expected (MySQL error {code}); "
                          f"check MATOMO_DB_TABLE_PREFIX (now {prefix!r})") from None
    finally:
        engine.dispose()
