"""The pretable's columns, defined once: SciELO's 7, in this order, in both file forms.

The TSV form is text (``NULL`` for a missing value, see :mod:`.tsv`); the Parquet form has the
types analysts want. Readers and writers of either form, here and in the COUNTER step, take the
names from :data:`COLUMNS`.

One row, whatever the source (``hits`` or ``matomo_db``; both give the same multiset of rows
for a day, the rules are in :mod:`.matomo_rules`):

* a row is one action Matomo recorded on the site-local day: a page view, a download or a site
  search -- not events, content interactions or outlinks, not the hits our classifier called
  bots, not the hits Matomo dropped as bots (sent without ``bots=1``);
* ``serverTime``: the action's time in UTC, ``YYYY-MM-DD HH:MM:SS`` (``server_time``, our ``cdt``);
* ``browserName``: the *name* of the client Matomo's DeviceDetector found (``Chrome``,
  ``Chrome Mobile``, ``Mobile Safari``, ``Microsoft Edge``, or a non-browser client such as
  ``curl``), from the visit's stored code (``CH`` -> ``Chrome``); NULL when Matomo stored
  ``UNK`` (no client found, or a bot kept with ``bots=1``);
* ``browserVersion``: Matomo's stored version, major.minor (``122.0``); NULL when unknown;
* ``ip``: the visit's IP as text, IPv4 or IPv6 (an IPv4-mapped IPv6 as IPv4);
* ``latitude``/``longitude``: Matomo's visit location, or a MaxMind database for ``hits``; NULL
  when none;
* ``actionName``: for a page view the URL as Matomo stores it -- no scheme, no leading ``www.``,
  host in lower case, query parameters Matomo strips removed (``utm_source``, ``gclid``,
  ``fbclid``... :data:`~.matomo_rules.EXCLUDED_QUERY_PARAMETERS`), no fragment; for a download the
  URL as requested, also without scheme and ``www.``, nothing stripped (Matomo keeps download
  URLs whole); for a site search ``search:`` followed by the keyword (Matomo stores the keyword,
  not the search page's URL).
"""

from __future__ import annotations

COLUMNS = ("serverTime", "browserName", "browserVersion", "ip", "latitude", "longitude", "actionName")

# A row: (serverTime text, browserName, browserVersion, ip, latitude, longitude, actionName),
# None for missing values.
Row = tuple


def parquet_schema():
    """The Parquet form's types: ``serverTime`` a UTC timestamp, latitude and longitude floats.

    Built on demand so that reading a pretable's TSV (the COUNTER step) does not import pyarrow."""
    import pyarrow as pa

    types = {"serverTime": pa.timestamp("s", tz="UTC"), "latitude": pa.float64(), "longitude": pa.float64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
