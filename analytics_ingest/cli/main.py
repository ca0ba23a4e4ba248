"""``analytics-ingest``: the command-line shell over the engine.

Bad configuration or input ends with one line on stderr (no traceback) and exit status 2; an
import that did not deliver every trackable line exits 1; 0 means everything arrived.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import stat
import sys
from pathlib import Path

from ..config import DEFAULT_HOME, ENV_HOME, ENV_SITES, OUTBOX_URL, load_settings
from ..errors import ConfigError, IngestError, InputError
from ..logs.formats import resolve_name
from ..matomo.retry import RetryPolicy
from ..vocabulary import FILE_LOADED
from ..weblogs.classify import ClassifyOptions
from .spool import discard, spool
from .summary import render_text, totals

EXIT_OK, EXIT_INCOMPLETE, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
INTERRUPTED = "analytics-ingest: interrupted; delivered batches are recorded, rerun to resume"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="state directory (env ANALYTICS_INGEST_HOME, default ./.analytics_ingest)")
    p.add_argument("--ledger-url", help="SQLAlchemy URL of the ledger (env ANALYTICS_INGEST_LEDGER_URL)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics-ingest", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="import access-log files into Matomo, exactly once")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="log files (plain, gzip, bz2, xz) or - for stdin")
    imp.add_argument("--site", type=int, required=True, help="Matomo idsite")
    imp.add_argument("--format", dest="format_name", help="log format name (default: auto-detect)")
    imp.add_argument("--log-format-regex", help="a regex with named groups (implies --format regex)")
    imp.add_argument("--log-date-format", help="strptime format of the regex's date group")
    imp.add_argument("--recorders", type=_positive, default=4, help="concurrent delivery lanes (default 4)")
    imp.add_argument("--batch-size", type=_positive, default=500, help="hits per bulk request (default 500)")
    imp.add_argument("--enable-static", action="store_true", help="track static files (as downloads)")
    imp.add_argument("--enable-bots", action="store_true", help="track bots (sent with bots=1)")
    imp.add_argument("--enable-http-errors", action="store_true", help="track 4xx/5xx responses")
    imp.add_argument("--enable-http-redirects", action="store_true", help="track 3xx responses except 304")
    imp.add_argument("--exclude-path", action="append", default=[], metavar="GLOB")
    imp.add_argument("--include-path", action="append", default=[], metavar="GLOB")
    imp.add_argument("--include-host", action="append", default=[], metavar="HOST")
    imp.add_argument("--exclude-host", action="append", default=[], metavar="HOST")
    imp.add_argument("--useragent-exclude", action="append", default=[], metavar="SUBSTRING")
    imp.add_argument("--force", action="store_true", help="re-import a file whose content changed")
    imp.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="wait this long for another import of the same file, or another Matomo writer of the site, to finish")
    imp.add_argument("--matomo-url", help="Matomo base URL (env MATOMO_URL; unset = offline outbox)")
    imp.add_argument("--retry-max-attempts", type=_positive, default=8)
    imp.add_argument("--retry-delay", type=float, default=1.0, help="first retry delay in seconds (doubles)")
    imp.add_argument("--request-timeout", type=float, default=120.0)
    imp.add_argument("--settle-wait", type=float, default=60.0, metavar="SECONDS",
                     help="the longest Matomo may take to commit one bulk request: a batch whose fate is unknown "
                          "(timeout, crash) is looked up no sooner than this after it was sent (default 60)")
    imp.add_argument("--lease-ttl", type=float, default=None, help=argparse.SUPPRESS)  # tests: frozen owners
    imp.add_argument("--no-progress", action="store_true")
    _add_common(imp)

    st = sub.add_parser("status", help="print the per-day status table")
    st.add_argument("--site", type=int)
    st.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    _add_common(st)

    demo = sub.add_parser("demo", help="import the bundled demo logs offline (into the outbox)")
    _add_common(demo)

    rep = sub.add_parser("replay", help="replay missed Matomo tracker requests of a window from CloudWatch Logs",
                         description="Fetch the tracker requests Matomo answered with 5xx between START and END "
                                     "(ISO 8601, e.g. 2024-03-14T09:30:00Z) from CloudWatch Logs, replay each exactly "
                                     "once, then re-archive the days that received hits. Env: MATOMO_URL, "
                                     "MATOMO_API_TOKEN, NUM_THREADS, CLOUDWATCH_* and the AWS credential chain.")
    rep.add_argument("start", metavar="START")
    rep.add_argument("end", metavar="END")
    rep.add_argument("--site", help="site key or Matomo id from the sites file (default: the only site)")
    _add_common(rep)

    from .harvest import add_harvest_parser
    from .report import add_report_parser

    add_harvest_parser(sub)
    add_report_parser(sub)
    return parser


def _check_home(flag: str | None) -> None:
    """One line, before anything is opened, when the state directory is a file (or under one)."""
    if flag:
        home, how = flag, "--home"
    elif os.environ.get(ENV_HOME):
        home, how = os.environ[ENV_HOME], ENV_HOME
    else:
        home, how = DEFAULT_HOME, "the state directory"
    probe = Path(home)
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent  # the first part that exists: the directories below it get created
    if not os.path.lexists(probe) or os.path.isdir(probe):
        return
    what = "is a file" if os.path.isfile(probe) else "is not a directory"
    where = f"{how} {home}" if probe == Path(home) else f"{how} {home}: {probe}"
    raise ConfigError(f"{where} {what}; give a directory for the state (ledger, outbox, spool)")


def _settings(args, matomo_url=None):
    _check_home(args.home)
    return load_settings(home=args.home, ledger_url=args.ledger_url, matomo_url=matomo_url)


def _check_paths(paths: list[str]) -> list[tuple[str, str | None]]:
    """Check every path before anything is sent: ``(as given, real path)`` per path, the real
    path ``None`` for input that is spooled first (``-``, FIFOs, /dev/fd pipes, devices)."""
    if paths.count("-") > 1:
        raise InputError("- (stdin) is given more than once; it can be read only once")
    checked: list[tuple[str, str | None]] = []
    streams: set = set()
    for path in paths:
        if path == "-":
            checked.append((path, None))
            continue
        try:
            info = os.stat(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path} is a directory; give log files (or - for stdin)")
        if not os.access(path, os.R_OK):
            raise InputError(f"cannot read {path}: permission denied; check the path and permissions")
        if stat.S_ISREG(info.st_mode):
            checked.append((path, os.path.realpath(path)))
            continue
        if (info.st_dev, info.st_ino) in streams:
            raise InputError(f"{path} is given more than once; a pipe can be read only once")
        streams.add((info.st_dev, info.st_ino))
        checked.append((path, None))
    return checked


def _spool(path: str, settings) -> Path:
    """Copy stdin (``-``) or a non-regular file to the spool (see :mod:`analytics_ingest.cli.spool`)."""
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise InputError("cannot read -: there is no binary standard input; pass a file path instead")
        return spool(stdin, settings)
    try:
        stream = open(path, "rb", buffering=0)  # a FIFO: waits here for its writer, like cat
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    with stream:
        return spool(stream, settings)


def _site_timezone(site_id: int) -> str | None:
    """The site's timezone from the sites file the user configured (``ANALYTICS_INGEST_SITES``),
    so a CLI import names its days as the Dagster layer does; None when no sites file lists the
    site (then Matomo's timezone, UTC offline). The bundled demo file is not taken for a real site."""
    if not os.environ.get(ENV_SITES):
        return None  # without loading the sites module and YAML (~20 ms of every start)
    from ..sites import load_sites

    return next((s.timezone for s in load_sites() if s.id == int(site_id)), None)


def cmd_import(args) -> int:
    # The engine (SQLAlchemy, the importer) is imported when a command needs it: --help and the
    # argument checks stay fast.
    from ..engine import make_importer, open_ledger
    from ..weblogs.importer import Importer, ImportOptions
    from .progress import Progress

    settings = _settings(args, args.matomo_url)
    inputs = _check_paths(args.paths)
    classify = ClassifyOptions(
        enable_static=args.enable_static,
        enable_bots=args.enable_bots,
        enable_http_errors=args.enable_http_errors,
        enable_http_redirects=args.enable_http_redirects,
        exclude_paths=tuple(args.exclude_path),
        include_paths=tuple(args.include_path),
        include_hosts=tuple(args.include_host),
        exclude_hosts=tuple(args.exclude_host),
        useragent_exclude=tuple(args.useragent_exclude),
    )
    format_name = "regex" if args.log_format_regex else args.format_name
    resolve_name(format_name)  # an unknown format is a one-line error before anything runs
    options = ImportOptions(
        lanes=args.recorders,
        batch_size=args.batch_size,
        format_name=format_name,
        regex=args.log_format_regex,
        date_format=args.log_date_format,
        classify=classify,
    )

    # every file is usable before any hit is sent; what was probed, so that it is not probed twice
    probed = {real: Importer.check_usable(real, options) for _given, real in inputs if real is not None}
    policy = RetryPolicy(max_attempts=args.retry_max_attempts, base_delay=args.retry_delay,
                         read_timeout=args.request_timeout, settle_wait=args.settle_wait,
                         settle_interval=min(2.0, max(args.settle_wait / 4, 0.05)))
    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    progress = Progress() if show_progress else None
    ledger = open_ledger(settings)
    try:
        importer = make_importer(settings, ledger, args.site, policy=policy, progress=progress, lease_wait=args.wait,
                                 lease_ttl=args.lease_ttl, site_wait=args.wait, timezone=_site_timezone(args.site),
                                 on_site_wait=lambda line: print(line, file=sys.stderr, flush=True))
        # What is loaded by now (SQLAlchemy, the engine, the ledger) lives as long as the process:
        # out of the collector's sight, the collections that the lanes' results set off and the
        # interpreter's exit no longer walk it (~50 ms of a short import's wall time).
        gc.freeze()
        results = []
        interrupted = False
        with importer:
            for given, real in inputs:
                spooled = _spool(given, settings) if real is None else None
                path = str(spooled) if spooled is not None else real
                if progress:
                    progress.start_file(path)
                try:
                    result = importer.import_file(path, options, force=args.force, probed=probed.get(real))
                except BaseException:
                    if spooled is not None:
                        print(f"analytics-ingest: the copy of {given} is kept at {spooled}; "
                              "rerun with the same input to resume", file=sys.stderr)
                    raise
                if spooled is not None:
                    if result.status == FILE_LOADED:
                        discard(spooled)
                    else:
                        note = f"the copy of {given} is kept at {spooled}; rerun with the same input to resume"
                        result.message = f"{result.message}; {note}" if result.message else note
                results.append(result)
                if progress:
                    progress.finish()
                if getattr(result, "interrupted", False):  # Ctrl-C, reported as a partial result
                    interrupted = True
                    break
    finally:
        ledger.close()
    summary = totals(results)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(render_text(summary))
    if interrupted:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if summary["ok"] else EXIT_INCOMPLETE


def cmd_status(args) -> int:
    from ..engine import open_ledger

    settings = _settings(args)
    ledger = open_ledger(settings)
    try:
        rows = ledger.day_statuses(site_id=args.site, since=args.since)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([
            {"site_id": r.site_id, "day": r.day.isoformat(), "status": r.status, "expected": r.expected,
             "found": r.found, "loaded": r.loaded} for r in rows
        ]))
        return EXIT_OK
    print(f"{'site':>6}  {'day':<10}  {'status':<10}  {'loaded':>6}/{'expected':<8}  found")
    for r in rows:
        print(f"{r.site_id:>6}  {r.day.isoformat():<10}  {r.status:<10}  {r.loaded:>6}/{r.expected:<8}  {r.found}")
    if not rows:
        print("(no days in the ledger yet)")
    return EXIT_OK


def cmd_demo(args) -> int:
    from ..demo import DEMO_DIR

    paths = sorted(str(p) for p in DEMO_DIR.iterdir() if p.name.startswith("access"))
    argv = ["import", *paths, "--site", "1", "--no-progress"]
    if args.home:
        argv += ["--home", args.home]
    if args.ledger_url:
        argv += ["--ledger-url", args.ledger_url]
    if args.json:
        argv.append("--json")
    demo_args = build_parser().parse_args(argv)
    demo_args.matomo_url = OUTBOX_URL  # the demo is offline by definition, whatever MATOMO_URL says
    return cmd_import(demo_args)


def cmd_replay(args) -> int:
    from ..cloudwatch.pipeline import CloudwatchConfig, replay_window
    from ..cloudwatch.window import check_span, parse_window
    from ..engine import open_ledger
    from ..matomo.archive import ArchiveSettings, LazyRunner
    from ..sites import pick_site

    start, end = parse_window(args.start, args.end, max_span=None)  # argument errors first, before any setting
    config = CloudwatchConfig.from_env(os.environ)
    check_span(start, end, config.max_span)
    settings = _settings(args)
    site = pick_site(args.site)
    with open_ledger(settings) as ledger:
        runner = LazyRunner(lambda: ArchiveSettings.from_env(os.environ).runner())  # read when a day is archived
        report = replay_window(settings, ledger, config, site, start, end, runner=runner)
    if args.json:
        print(json.dumps(report.__dict__, sort_keys=True, default=str))
    else:
        print("\n".join(report.lines()))
    return EXIT_INCOMPLETE if report.failed_windows or report.truncated_windows else EXIT_OK


def cmd_report(args) -> int:
    from .report import run_report

    return run_report(args)


def cmd_harvest(args) -> int:
    from .harvest import run_harvest

    return run_harvest(args)


def _load_dotenv(path: Path) -> None:
    """Read ``./.env`` as ``dagster dev`` does, so the CLI and the code location see the same
    settings; variables already in the environment win."""
    if not path.is_file():
        return
    from dotenv import dotenv_values

    for name, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(name, value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _load_dotenv(Path.cwd() / ".env")
    handlers = {"import": cmd_import, "status": cmd_status, "demo": cmd_demo, "harvest": cmd_harvest,
                "replay": cmd_replay, "report": cmd_report}
    try:
        _check_home(getattr(args, "home", None))  # every subcommand, before anything is opened
        return handlers[args.command](args)
    except IngestError as exc:
        print(f"analytics-ingest: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if argv is not None:
            # Called in-process (tests, a notebook): the import command's gc.freeze() must not
            # keep the caller's objects from the collector. A whole process exits just after.
            gc.unfreeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
