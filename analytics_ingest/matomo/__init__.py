"""Matomo clients: tracking requests, bulk delivery (HTTP or outbox), hit look-ups, Reporting API."""
