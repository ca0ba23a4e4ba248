pytest_plugins = ["analytics_ingest_tests.db_fixtures"]
