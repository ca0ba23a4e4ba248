"""One sensor per log root: register settled files and ask for the days they feed.

A file is settled when its size and mtime did not change between two ticks (rsync is done with
it); rsync's temporary files and the live file of the current hour are never looked at. The
cursor holds what the last tick saw, so a tick only inspects files that are new or changed.

A run for a day whose files are not all in yet fails on purpose (its partition shows the day is
not Loaded); the file that completes the day has a new run key and asks for the day again.
"""


import hashlib
import json

import dagster as dg

from ...weblogs import pipeline
from ...weblogs.discovery import list_candidates, settled
from ..partitions import site_days
from ..resources import IngestResource
from ..site_day import NO_RETRY_ON_STEP_FAILURE

# Inspecting a new file reads a sample of it; a first look at a directory of 10,000 files must
# not run into the 60 s tick limit, so each tick registers at most this many (the rest next tick).
MAX_NEW_FILES_PER_TICK = 300


def build_log_sensor(site, job) -> dg.SensorDefinition:
    partitions = site_days(site)

    @dg.sensor(
        name=f"{site.key}_log_files",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(f"Watches {site.log_dir} for settled `{site.file_pattern}` files of {site.name}, registers them "
                     "in the ledger and imports the days they feed."),
    )
    def log_files_sensor(context: dg.SensorEvaluationContext, ingest: IngestResource) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        seen, done = cursor.get("seen", {}), cursor.get("registered", {})
        observed = list_candidates(site.log_dir, site.file_pattern)
        seen, stable = settled(seen, observed)
        fresh = [o for o in stable if done.get(o.path) != [o.size, o.mtime_ns]]
        backlog = max(0, len(fresh) - MAX_NEW_FILES_PER_TICK)
        fresh = fresh[:MAX_NEW_FILES_PER_TICK]
        if backlog:
            context.log.info(f"{backlog} more settled files wait for the next tick")
        by_day: dict[str, list[str]] = {}
        skipped_days: set[str] = set()
        if fresh:
            with ingest.ledger() as ledger:
                for obs in fresh:
                    registered = pipeline.register_file(ledger, site, obs)
                    done[obs.path] = [obs.size, obs.mtime_ns]
                    if registered.status == "invalid":
                        context.log.warning(f"{obs.path}: invalid: {registered.reason}")
                        continue
                    for day in registered.days:
                        # A tick that asks for a partition that does not exist fails whole.
                        if partitions.has_partition_key(day):
                            by_day.setdefault(day, []).append(f"{obs.path}:{obs.size}:{obs.mtime_ns}")
                        else:
                            skipped_days.add(day)
        if skipped_days:
            context.log.warning(f"days outside {site.key}'s partitions, not imported: {sorted(skipped_days)}")
        present = {o.path for o in observed}
        done = {path: version for path, version in done.items() if path in present}
        requests = [
            dg.RunRequest(
                # The key names the file versions, so a file that changes later runs the day again.
                run_key=f"{site.key}:{day}:" + hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16],
                partition_key=day,
                tags=NO_RETRY_ON_STEP_FAILURE,
            )
            for day, files in sorted(by_day.items())
        ]
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps({"seen": seen, "registered": done}, sort_keys=True),
            skip_reason=None if requests else dg.SkipReason(f"{len(observed)} files, none newly settled"),
        )

    return log_files_sensor
