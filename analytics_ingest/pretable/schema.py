"""The pretable's columns, defined once: SciELO's 7, in this order, in both file forms.

The TSV form is text (``NULL`` for a missing value, see :mod:`.tsv`); the Parquet form has the
types analysts want. Readers and writers of either form, here and in the COUNTER step, take the
names from :data:`COLUMNS`.
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
