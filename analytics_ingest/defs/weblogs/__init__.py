"""Web-server access logs: rsync'd files → ledger → Matomo, per site and day."""
