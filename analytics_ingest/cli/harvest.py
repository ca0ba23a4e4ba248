"""``analytics-ingest harvest``: the Opencast user-action harvester's command line.

The main CLI adds this sub-command with :func:`add_harvest_parser` and calls :func:`run_harvest`.
Arguments are taken as strings and checked here, so a bad value is one line on stderr with exit
status 2 (argparse's own ``type=`` errors would print the usage block too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time

from ..errors import ConfigError, IngestError, InputError
from ..opencast.settings import ENV_QUEUE, OpencastSettings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG = "analytics-ingest harvest"
log = logging.getLogger(__name__)


def add_harvest_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "harvest", help="harvest Opencast user actions into SQS, a JSON-lines file or stdout",
        description="Fetch Opencast user actions since the last harvest (or --start/--end), add episode "
                    "metadata and deliver them. Env: OPENCAST_URL, OPENCAST_USER, OPENCAST_PASSWORD, "
                    "EPISODE_CACHE_EXPIRE, REDIS_URL, MAX_START_END_SPAN, ANALYTICS_INGEST_HOME.")
    p.add_argument("--start", metavar="ISO", help="window start (ISO 8601 or YYYYMMDDHHmmss; naive = server zone)")
    p.add_argument("--end", metavar="ISO", help="window end (default: now)")
    p.add_argument("--interval", metavar="MIN",
                   help="repeat every MIN minutes (default: one pass); also the first run's look-back")
    p.add_argument("--batch-size", metavar="N", default="1000", help="actions per request (default 1000)")
    p.add_argument("--output", metavar="QUEUE|FILE|-",
                   help=f"sqs://NAME or an SQS queue URL, a file path, or - for stdout (default: ${ENV_QUEUE} as SQS)")
    p.add_argument("--allow-long-span", action="store_true",
                   help="harvest even if the window is longer than MAX_START_END_SPAN (once, with no other harvester running)")
    p.add_argument("--cursor", help="cursor file or s3://bucket/key (env OPENCAST_CURSOR, default <home>/opencast/cursor.json)")
    p.add_argument("--home", help="state directory (env ANALYTICS_INGEST_HOME)")
    p.add_argument("--matomo-journal", metavar="FILE",
                   help="also append Matomo events to this JSON-lines journal (each action once)")
    return p


def parse_when(name: str, text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    value = text.strip()
    try:
        if value.isdigit() and len(value) == 14:  # the original's YYYYMMDDHHmmss
            return dt.datetime.strptime(value, "%Y%m%d%H%M%S")
        return dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise InputError(f"{name} {text!r} is not a time; use ISO 8601 like 2024-03-01T12:00:00Z or YYYYMMDDHHmmss") from None


def _positive_number(name: str, text: str | None, kind=int):
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise InputError(f"{name} must be a positive {'integer' if kind is int else 'number'}, got {text!r}") from None
    if value <= 0:
        raise InputError(f"{name} must be more than 0, got {text!r}")
    return value


def run_harvest(args, *, session=None, sqs_client=None, s3_client=None, redis_client=None,
                env=None, sleep=time.sleep, max_passes: int | None = None) -> int:
    """One pass (or one every ``--interval`` minutes); prints one summary line per pass.

    Exit 0 when everything fetched was delivered, 1 when Opencast or the sink failed after
    retries (cursor not advanced), 2 for bad arguments or configuration, 130 on Ctrl-C.
    Clients and ``max_passes`` are injectable for tests.
    """
    from ..opencast.run import build, harvest_once

    try:
        start = parse_when("--start", args.start)
        end = parse_when("--end", args.end)
        if args.interval is not None and (start or end):
            raise InputError("--interval repeats from the cursor; do not combine it with --start/--end")
        interval = _positive_number("--interval", args.interval, float)
        batch_size = _positive_number("--batch-size", args.batch_size)
        settings = OpencastSettings.from_env(os.environ if env is None else env, home=args.home, cursor=args.cursor)
        output = args.output or (f"sqs://{settings.queue}" if settings.queue else None)
        if not output:
            raise ConfigError(f"no output: pass --output sqs://QUEUE, a file path or -, or set {ENV_QUEUE}")
        harvester, enricher, sink = build(
            settings, output=output, batch_size=batch_size, allow_long_span=args.allow_long_span,
            session=session, sqs_client=sqs_client, s3_client=s3_client, redis_client=redis_client)
        if interval:
            harvester.default_lookback = dt.timedelta(minutes=interval)
    except (ConfigError, InputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    passes = 0
    status = EXIT_OK
    try:
        while True:
            began = time.monotonic()
            try:
                summary = harvest_once(harvester, enricher, sink, start=start, end=end, journal=args.matomo_journal)
                # stdout may carry the messages (--output -), so the summary goes to stderr then.
                print(summary.line(), file=sys.stderr if output == "-" else sys.stdout, flush=True)
                status = EXIT_OK
            except (ConfigError, InputError) as exc:
                print(f"{PROG}: error: {exc}", file=sys.stderr)
                return EXIT_CONFIG
            except IngestError as exc:
                print(f"{PROG}: error: {exc}", file=sys.stderr)
                status = EXIT_FAILED
                if not interval:
                    return status
            passes += 1
            if not interval or (max_passes is not None and passes >= max_passes):
                return status
            sleep(max(0.0, interval * 60 - (time.monotonic() - began)))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the cursor holds the last completed pass", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sink.close()


def main(argv: list[str] | None = None, **kwargs) -> int:
    """Stand-alone entry (``python -m analytics_ingest.cli.harvest harvest ...``) and for tests."""
    parser = argparse.ArgumentParser(prog="analytics-ingest")
    add_harvest_parser(parser.add_subparsers(dest="command", required=True))
    return run_harvest(parser.parse_args(argv), **kwargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
