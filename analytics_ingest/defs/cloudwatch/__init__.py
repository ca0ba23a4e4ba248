"""GDS Verify's missed-event replay: CloudWatch Logs → stored events → Matomo, per site and day."""
