"""Matomo re-archiving after imports into past days, and the check that reports hold the import."""
