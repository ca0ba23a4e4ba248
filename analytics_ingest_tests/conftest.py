pytest_plugins = ["analytics_ingest_tests.db_fixtures", "analytics_ingest_tests.matomo_fixtures"]
