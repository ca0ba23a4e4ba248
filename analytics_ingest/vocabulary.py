"""The words used for statuses and categories, everywhere: ledger, CLI output, asset metadata.

One concept, one name. Import these constants instead of spelling the strings again.
"""

# --- file status (SciELO's control_log_file.status, as words) ---------------------------------
FILE_QUEUE = "queue"  # known, nothing delivered yet
FILE_LOADING = "loading"  # an import holds the lease right now
FILE_PARTIAL = "partial"  # some batches delivered, not all
FILE_LOADED = "loaded"  # every trackable line delivered
FILE_FAILED = "failed"  # the last attempt gave up (retry budget, Matomo down); resumable
FILE_INVALID = "invalid"  # refused (unreadable, not a log, content contradicts its name)
FILE_STATUSES = (FILE_QUEUE, FILE_LOADING, FILE_PARTIAL, FILE_LOADED, FILE_FAILED, FILE_INVALID)

# --- file kind: what a ledger file is ------------------------------------------------------
KIND_LOG = "log"  # a web server's access log: counts toward its days' completeness
KIND_JOURNAL = "journal"  # our own append-only journal (CloudWatch replay, Opencast events):
#                           delivered exactly once like a log, but never makes a day Loaded
FILE_KINDS = (KIND_LOG, KIND_JOURNAL)

# --- day status (SciELO's control_date_status.status, as words, in order) ---------------------
DAY_QUEUE = "queue"
DAY_PARTIAL = "partial"
DAY_LOADED = "loaded"
DAY_PRETABLE = "pretable"
DAY_CALCULATED = "calculated"
DAY_DONE = "done"  # calculated, and the day's usage reports exported (SciELO: metrics saved for SUSHI)
DAY_STATUSES = (DAY_QUEUE, DAY_PARTIAL, DAY_LOADED, DAY_PRETABLE, DAY_CALCULATED, DAY_DONE)

# --- line categories: every line lands in exactly one --------------------------------------
# tracked
PAGES = "pages"
DOWNLOADS = "downloads"
TRACKED_CATEGORIES = (PAGES, DOWNLOADS)
# ignored (import_logs.py's default filters)
BOTS = "bots"
STATIC = "static"
HTTP_ERRORS = "http_errors"
HTTP_REDIRECTS = "http_redirects"
FILTERED = "filtered"  # --exclude-path / --include-host and friends
IGNORED_CATEGORIES = (BOTS, STATIC, HTTP_ERRORS, HTTP_REDIRECTS, FILTERED)
# and the rest
INVALID = "invalid"
