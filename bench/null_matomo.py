#!/usr/bin/env python3
"""``python bench/null_matomo.py ...``: the loopback Matomo stand-in of the benchmarks, as a command
(see :mod:`analytics_ingest_tests.null_matomo`, where it lives beside the fake Matomo)."""

import sys

from analytics_ingest_tests.null_matomo import main

if __name__ == "__main__":
    sys.exit(main())
