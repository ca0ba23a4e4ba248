"""Harvard DCE's Opencast (Matterhorn) user-action harvester, as a plain-Python engine.

Modules, one job each:

- :mod:`.client` — the Opencast REST API (digest auth, paging, the JSON quirks, retries).
- :mod:`.harvest` — the incremental window, the span guard, boundary-second de-duplication and
  the cursor stores (memory/JSON, local file, S3).
- :mod:`.enrich` — the episode cache (Redis or local) and the message shape of the original.
- :mod:`.deliver` — sinks: SQS (batched, partial-failure retry) and JSON lines (file or stdout).
- :mod:`.matomo_events` — an append-only JSON-lines journal of Matomo events.
- :mod:`.run` — one harvest pass wiring the above together (shared by the CLI and Dagster).
- :mod:`.settings` — the environment variables.
- :mod:`.cli` — ``analytics-ingest harvest``.

Nothing here imports Dagster.
"""
