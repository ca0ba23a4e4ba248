"""memex-style usage reports over time windows, per site and day."""
