"""``python -m analytics_ingest.cli``: the same as the ``analytics-ingest`` script."""

import sys

from .main import main

sys.exit(main())
