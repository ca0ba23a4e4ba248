#!/usr/bin/env python3
"""``python bench/gen_logs.py ...``: the log generator the tests use, as a command (see
:mod:`analytics_ingest_tests.gen_logs`, where it lives so that tests and benchmarks import it)."""

import sys

from analytics_ingest_tests.gen_logs import main

if __name__ == "__main__":
    sys.exit(main())
