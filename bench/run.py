#!/usr/bin/env python3
"""Benchmark: lines/s, hits/s and peak RSS of the importer, end to end and parse-only.

    python bench/run.py                      # 1,000,000 lines: parse-only and end to end
    python bench/run.py --lines 200000 --mode e2e
    python bench/run.py --flat               # peak RSS at 100k and 5M lines (memory must stay flat)
    python bench/run.py --sizes 10000,200000,1000000 --mode e2e --import-logs /path/to/import_logs.py
                                             # everyday files, each also through Matomo's importer

End to end = the ``analytics-ingest import`` command as a user runs it (interpreter start-up,
ledger, four lanes, bulk POSTs with keep-alive) against ``bench/null_matomo.py`` in its own
process on loopback. Parse-only = read + parse + classify + count, in a fresh process.
Peak memory is the PSS of the child's process tree. ``--import-logs`` runs Matomo's
``import_logs.py`` (from matomo-org/matomo-log-analytics; not shipped here) on the same file
against the same kind of null Matomo, with the same number of recorders and batch size (and with
``--import-logs-defaults`` also with its own defaults). Logs are generated once per (lines, seed) under
``bench/out/`` by ``bench/gen_logs.py``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"

PARSE_ONLY = """
import sys, time
from analytics_ingest.logs import open_log, scan
t = time.perf_counter()
with open_log(sys.argv[1]) as src:
    stats = scan(src, format_name=sys.argv[2] or None)
print(stats.lines_total, time.perf_counter() - t)
"""


def log_for(lines: int, seed: int, gz: bool) -> tuple[Path, dict]:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"access-{lines}-{seed}{'.gz' if gz else ''}.log"
    manifest = Path(str(path) + ".manifest.json")
    if not manifest.exists():
        subprocess.run([sys.executable, str(HERE / "gen_logs.py"), "--lines", str(lines), "--seed", str(seed),
                        *(["--gzip"] if gz else []), "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path, json.loads(manifest.read_text())


def _pss_kb(pid: int) -> int:
    """Proportional set size: forked workers share pages with their parent; RSS would count
    those once per process, PSS splits them, so the sum over the tree is the real footprint."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    """Memory (PSS) of ``root`` and all its descendants (the importer's worker processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(_pss_kb(pid) for pid in tree)


def measure(cmd: list[str], env: dict) -> tuple[str, float, float]:
    """Run ``cmd``; return (stdout, wall seconds, peak memory (PSS, MB) of it and its children, summed)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        proc = subprocess.Popen(cmd, env=env, stdout=out_f, stderr=err_f, text=True)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            # A coarse poll (the scan of /proc must not steal the CPU it measures), from the start.
            while True:
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
                if done.wait(0.2):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()  # the wall time ends when the child does, not at the sampler's next tick
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {err.strip()[-500:]}")
    return out, wall, peak[0] / 1024


def parse_only(path: Path, manifest: dict, fmt: str) -> dict:
    out, wall, rss = measure([sys.executable, "-c", PARSE_ONLY, str(path), fmt], dict(os.environ))
    lines, seconds = out.split()
    assert int(lines) == manifest["lines"], (lines, manifest["lines"])
    return {"mode": "parse+classify", "lines": int(lines), "seconds": round(float(seconds), 2),
            "lines_per_s": round(int(lines) / float(seconds)), "process_wall_s": round(wall, 2),
            "peak_mem_mb": round(rss, 1)}


def _null_matomo() -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen([sys.executable, str(HERE / "null_matomo.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    return server, int(server.stdout.readline().split()[1])


def import_logs(script: Path, path: Path, manifest: dict, recorders: int | None, batch: int | None) -> dict:
    """Matomo's importer on the same file, for the ratio: with our number of recorders and batch
    size, or (None) with its own defaults (one recorder, 200 requests per POST)."""
    server, port = _null_matomo()
    try:
        cmd = [sys.executable, str(script), f"--url=http://127.0.0.1:{port}", "--token-auth=bench-token", "--idsite=1"]
        if recorders is not None:
            cmd += [f"--recorders={recorders}", f"--recorder-max-payload-size={batch}"]
        _out, wall, rss = measure([*cmd, str(path)], dict(os.environ))
    finally:
        server.terminate()
        server.communicate(timeout=30)
    return {"mode": "import_logs.py" if recorders is not None else "import_logs.py (its defaults)",
            "lines": manifest["lines"], "wall_s": round(wall, 2),
            "lines_per_s": round(manifest["lines"] / wall), "peak_mem_mb": round(rss, 1)}


def end_to_end(path: Path, manifest: dict, fmt: str, recorders: int, batch: int) -> dict:
    server, port = _null_matomo()
    home = tempfile.mkdtemp(prefix="ai-bench-")
    try:
        env = {**os.environ, "MATOMO_URL": f"http://127.0.0.1:{port}", "MATOMO_API_TOKEN": "bench-token",
               "ANALYTICS_INGEST_HOME": home}
        env.pop("ANALYTICS_INGEST_LEDGER_URL", None)
        cmd = [sys.executable, "-m", "analytics_ingest.cli.main", "import", str(path), "--site", "1", "--json",
               "--recorders", str(recorders), "--batch-size", str(batch)]
        if fmt:
            cmd += ["--format", fmt]
        out, wall, rss = measure(cmd, env)
        summary = json.loads(out)
    finally:
        server.terminate()
        received = server.communicate(timeout=30)[0]
        shutil.rmtree(home, ignore_errors=True)
    received_hits = int(received.split()[1]) if received.startswith("RECEIVED") else -1
    assert summary["tracked"] == manifest["tracked"] == received_hits, (summary["tracked"], received_hits)
    return {"mode": "end-to-end", "lines": summary["lines_total"], "hits": summary["tracked"],
            "wall_s": round(wall, 2), "lines_per_s": round(summary["lines_total"] / wall),
            "hits_per_s": round(summary["tracked"] / wall), "peak_mem_mb": round(rss, 1),
            "recorders": recorders, "batch_size": batch}


def compile_project() -> None:
    """Byte-compile the package first, as ``pip install`` does: an editable checkout run with
    PYTHONDONTWRITEBYTECODE set would compile every module in every measured run."""
    compileall.compile_dir(str(ROOT / "analytics_ingest"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--mode", choices=("all", "parse", "e2e"), default="all")
    parser.add_argument("--format", default="", help="log format (default: auto-detect)")
    parser.add_argument("--recorders", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--flat", action="store_true", help="peak RSS end to end at 100k and 5M lines")
    parser.add_argument("--sizes", help="comma-separated line counts, e.g. 10000,200000,1000000 (instead of --lines)")
    parser.add_argument("--import-logs", type=Path, metavar="IMPORT_LOGS_PY",
                        help="also run Matomo's import_logs.py end to end on each file, and print the ratio")
    parser.add_argument("--import-logs-defaults", action="store_true",
                        help="with --import-logs: also run it with its own defaults (1 recorder, 200 per POST)")
    args = parser.parse_args()
    compile_project()
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = [100_000, 5_000_000] if args.flat else [args.lines]
    for lines in sizes:
        path, manifest = log_for(lines, args.seed, args.gzip)
        if args.mode in ("all", "parse") and not args.flat:
            print(json.dumps(parse_only(path, manifest, args.format)), flush=True)
        if args.mode in ("all", "e2e") or args.flat:
            ours = end_to_end(path, manifest, args.format, args.recorders, args.batch_size)
            print(json.dumps(ours), flush=True)
            if args.import_logs:
                runs = [(args.recorders, args.batch_size)] + ([(None, None)] if args.import_logs_defaults else [])
                for recorders, batch in runs:
                    theirs = import_logs(args.import_logs, path, manifest, recorders, batch)
                    theirs["ratio"] = round(theirs["wall_s"] / ours["wall_s"], 1)
                    print(json.dumps(theirs), flush=True)


if __name__ == "__main__":
    main()
