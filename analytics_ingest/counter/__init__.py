"""COUNTER Release 5.1 usage metrics from pretables (SciELO's 7-column extract of Matomo's raw log).

* :mod:`.items`: URL -> item rules from YAML (``scielo_items.yaml``, ``demo_items.yaml`` bundled);
* :mod:`.metrics`: :func:`compute` -- robots and machines (COUNTER's lists), double clicks, sessions,
  Total/Unique item and title metrics, and the counts for the report;
* :mod:`.output`: the atomic TSV/Parquet writers of the tables (the pretable's columns and TSV reader
  are :mod:`analytics_ingest.pretable`'s, re-exported here for callers of ``read_pretable_tsv``).

No Dagster here; the assets call these functions.
"""

from .items import DEMO_ITEMS, SCIELO_ITEMS, ItemHit, ItemRules, load_rules, rules_from_yaml
from .metrics import (
    COLUMNS,
    ITEM_COLUMNS,
    MACHINES,
    ROBOTS,
    ROBOTS_LIST,
    TITLE_COLUMNS,
    CounterResult,
    CounterStats,
    ItemMetrics,
    TitleMetrics,
    compute,
    session_id,
)
from .output import (
    read_pretable_tsv,
    write_items_parquet,
    write_items_tsv,
    write_pretable_tsv,
    write_result,
    write_titles_parquet,
    write_titles_tsv,
)

__all__ = [
    "COLUMNS", "DEMO_ITEMS", "ITEM_COLUMNS", "MACHINES", "ROBOTS", "ROBOTS_LIST", "SCIELO_ITEMS", "TITLE_COLUMNS",
    "CounterResult", "CounterStats", "ItemHit", "ItemMetrics", "ItemRules", "TitleMetrics", "compute", "load_rules",
    "read_pretable_tsv", "rules_from_yaml", "session_id", "write_items_parquet", "write_items_tsv",
    "write_pretable_tsv", "write_result", "write_titles_parquet", "write_titles_tsv",
]
