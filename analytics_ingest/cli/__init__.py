"""``analytics-ingest``: the command-line shell over the engine, one module per sub-command family.

``main`` parses the arguments; the sub-commands import the engine only when they run, so
``--help`` and a small import start fast.
"""
