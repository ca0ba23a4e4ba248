"""Pretable rows straight from Matomo's raw log tables (SciELO's ``extract_pretable``).

One query per day: ``log_link_visit_action`` joined to ``log_visit`` (browser, IP, location) and
``log_action`` (the URL), for the site and the UTC ``server_time`` range of the site-local day.
Differences from SciELO's SQL, on purpose:

* the IP is decoded in Python from ``location_ip`` (VARBINARY(16)): 4 bytes IPv4, 16 bytes IPv6.
  MySQL's ``inet_ntoa`` only knows IPv4 and turned every IPv6 visitor into NULL;
* page views, downloads and site searches (``log_action.type`` 1 and 3 through
  ``idaction_url``; a site search has ``idaction_url`` NULL and its keyword, type 8, in
  ``idaction_name``), never events or content interactions (which also carry the page's URL in
  ``idaction_url``); SciELO's LEFT JOIN let those in with a NULL or unrelated name;
* browser and actionName are turned into the pretable's form (:mod:`.matomo_rules`): the code
  ``CH`` becomes ``Chrome``, a download's ``https://www.`` goes, Matomo's HTML escapes are undone,
  a site search is ``search:<keyword>`` -- the same last step the ``hits`` source takes;
* rows are streamed with a server-side cursor, ordered by IP as SciELO did (the COUNTER step
  groups by user), so a day of any size is read in constant memory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from functools import lru_cache
from typing import Iterator

from ..errors import ConfigError
from .matomo_rules import TYPE_DOWNLOAD, TYPE_PAGE_URL, TYPE_SITE_SEARCH, pretable_action_name, pretable_browser

ACTION_TYPES = (TYPE_PAGE_URL, TYPE_DOWNLOAD)  # through idaction_url; site searches through idaction_name
_PREFIX = re.compile(r"[A-Za-z0-9_]*")
# a day repeats its URLs and browsers: convert each distinct stored value once
_action_name = lru_cache(maxsize=1 << 17)(pretable_action_name)
_browser = lru_cache(maxsize=1 << 14)(pretable_browser)


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
        f"v.location_latitude, v.location_longitude, u.type, u.name, n.type, n.name "
        f"FROM {prefix}log_link_visit_action a "
        f"JOIN {prefix}log_visit v ON v.idvisit = a.idvisit "
        f"LEFT JOIN {prefix}log_action u ON u.idaction = a.idaction_url "
        f"LEFT JOIN {prefix}log_action n ON n.idaction = a.idaction_name "
        f"WHERE a.idsite = :idsite AND a.server_time >= :start AND a.server_time < :end "
        f"AND a.idaction_event_category IS NULL AND a.idaction_content_interaction IS NULL "
        f"AND (u.type IN :types OR (a.idaction_url IS NULL AND n.type = {TYPE_SITE_SEARCH})) "
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
            for server_time, label, version, ip, lat, lon, url_type, url, name_type, name in result:
                if isinstance(server_time, dt.datetime):
                    server_time = server_time.strftime("%Y-%m-%d %H:%M:%S")
                action = _action_name(url_type, url) if url_type in ACTION_TYPES else _action_name(name_type, name)
                browser, version = _browser(label, version)
                yield (str(server_time), browser, version, decode_ip(ip), _number(lat), _number(lon), action)
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
