"""SciELO's chain after Loaded: the day's pretable (→ Pretable), then COUNTER metrics (→ Calculated)."""
