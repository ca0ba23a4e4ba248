"""Pretables: one day of page views and downloads as SciELO's 7-column table (TSV + Parquet).

A pretable is what the COUNTER computation reads, so metrics never depend on Matomo's archives.
Two sources give the same columns: Matomo's own MySQL log tables (:mod:`.from_matomo`, SciELO's
way) or the hits this project parsed and delivered (:mod:`.from_hits`, no Matomo database needed).
"""

from .build import PretableResult, build_pretable, neighbours_ready, pretable_paths
from .schema import COLUMNS
from .tsv import read_pretable_tsv

__all__ = ["COLUMNS", "PretableResult", "build_pretable", "neighbours_ready", "pretable_paths", "read_pretable_tsv"]
