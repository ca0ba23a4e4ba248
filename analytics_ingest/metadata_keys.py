"""The words every shell uses for the numbers of a step: asset metadata, the CLI's JSON summary
and the ledger's day records say the same thing the same way.

One word per quantity, chosen where the shells disagreed:

* ``seconds`` (not ``seconds``): wall time of a step;
* ``robots_excluded`` (not ``robots_excluded``): rows dropped as robots, COUNTER's word;
* ``lines_total`` (not ``lines``): lines read, every category included;
* ``found`` (not ``present_files``): files on disk for a day;
* ``delivered`` (not ``imported``): hits Matomo acknowledged, exactly once.

Dagster's own keys are used where they exist, so its UI plots and shows them natively.
No Dagster import: the engine and the CLI read these names too.
"""

SECONDS = "seconds"
ROBOTS_EXCLUDED = "robots_excluded"
LINES_TOTAL = "lines_total"
FOUND = "found"
EXPECTED = "expected"
DELIVERED = "delivered"
DAY_STATUS = "day_status"

# Dagster's standard keys (TableMetadataSet's, written as strings: the set is not exported).
ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
