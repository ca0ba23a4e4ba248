"""Pipes and odd paths (issue #12 item 7): FIFOs and /dev/fd pipes go through the spool, every path
is checked before anything is sent, a --home that is a file is one line, Ctrl-C is one line."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analytics_ingest.cli.main import main
from analytics_ingest_tests.helpers import make_log

_ENV_PREFIXES = ("MATOMO_", "ANALYTICS_INGEST_")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env.update(extra)
    return env


def outbox_lines(home: Path) -> list[dict]:
    path = home / "outbox" / "site-1.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def spooled(home: Path) -> list[Path]:
    folder = home / "spool"
    return sorted(folder.iterdir()) if folder.exists() else []


def one_line_error(code, err, text):
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert text in err, err


# -- a) pipes, FIFOs, devices: through the spool ------------------------------------------------
def _writer(path, data: bytes) -> threading.Thread:
    def write():
        with open(path, "wb") as fifo:  # blocks until the import opens the FIFO
            fifo.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_imported_and_the_same_content_again_is_already_imported(tmp_path):
    log = tmp_path / "a.log"
    manifest = make_log(log, 1500, seed=21)  # ~350 KB: well past the 64 KiB fingerprint
    data = log.read_bytes()
    home = tmp_path / "h"
    runs = []
    for name in ("first.fifo", "second.fifo"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        writer = _writer(fifo, data)
        done = subprocess.run([sys.executable, "-m", "analytics_ingest.cli.main", "import", str(fifo), "--site", "1",
                               "--home", str(home), "--json"], env=subprocess_env(), capture_output=True, timeout=120)
        writer.join(timeout=10)
        assert done.returncode == 0, done.stderr
        assert done.stderr == b""
        runs.append(json.loads(done.stdout))
        assert spooled(home) == []  # removed once loaded
    first, second = runs
    assert first["status"] == "loaded" and first["tracked"] == manifest["tracked"]
    assert first["delivered"] == manifest["tracked"]
    assert second["delivered"] == 0 and second["files"][0]["message"].startswith("already imported")
    hits = outbox_lines(home)
    assert len(hits) == manifest["tracked"]
    assert len({h["pv_id"] for h in hits}) == len(hits)


def _feed(fd: int, data: bytes) -> None:
    with open(fd, "wb") as pipe:  # closes the write end: the import sees the end of input
        pipe.write(data)


def test_a_dev_fd_pipe_is_spooled_whole_and_a_rerun_is_not_a_change(tmp_path, capsys):
    # import <(cat a.log): the path is /dev/fd/N, a pipe that can be read once.
    log = tmp_path / "a.log"
    manifest = make_log(log, 1500, seed=22)
    data = log.read_bytes()
    home = tmp_path / "h"
    results = []
    for force in (False, True):
        read_end, write_end = os.pipe()
        writer = threading.Thread(target=_feed, args=(write_end, data), daemon=True)
        try:
            writer.start()
            args = ["import", f"/dev/fd/{read_end}", "--site", "1", "--home", home, "--json"]
            code, out, err = run(capsys, *args, *(["--force"] if force else []))
        finally:
            writer.join(timeout=10)
            os.close(read_end)
        assert code == 0, err
        results.append(json.loads(out))
    first, again = results
    assert first["tracked"] == manifest["tracked"] and first["lines_total"] == manifest["lines"]
    # Not "changed" (the first 64 KiB used to be read twice from the pipe), and --force sends nothing more.
    assert again["delivered"] == 0 and again["files"][0]["message"].startswith("already imported")
    assert len(outbox_lines(home)) == manifest["tracked"]
    assert spooled(home) == []


def test_a_character_device_is_spooled_too(tmp_path, capsys):
    code, out, err = run(capsys, "import", os.devnull, "--site", "1", "--home", tmp_path / "h", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["lines_total"] == 0 and "/spool/stdin-" in summary["files"][0]["path"]
    assert spooled(tmp_path / "h") == []


def test_an_incomplete_import_keeps_a_private_spool_copy_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    log = tmp_path / "a.log"
    make_log(log, 1500, seed=23)
    truncated = gzip.compress(log.read_bytes())[:-200]  # a gzip stream cut short: partial
    home = tmp_path / "h"
    old_umask = os.umask(0)  # the copy is owner-only whatever the umask
    try:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(truncated)))
        code, out, err = run(capsys, "import", "-", "--site", "1", "--home", home, "--json")
    finally:
        os.umask(old_umask)
    assert code == 1, err
    summary = json.loads(out)
    (kept,) = spooled(home)
    assert kept.name.startswith("stdin-") and kept.name.endswith(".log")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "spool").stat().st_mode) == 0o700
    assert summary["status"] == "partial"
    message = summary["files"][0]["message"]
    assert f"kept at {kept}" in message and "rerun with the same input to resume" in message
    first_hits = len(outbox_lines(home))
    assert first_hits > 0
    # The same input again finds the same copy (named by content) and its progress: nothing twice.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(truncated)))
    code, out, err = run(capsys, "import", "-", "--site", "1", "--home", home, "--json")
    again = json.loads(out)
    assert again["delivered"] == 0 and again["already_delivered"] == first_hits
    assert spooled(home) == [kept] and len(outbox_lines(home)) == first_hits


# -- b) every path checked before anything is sent ---------------------------------------------
def test_a_directory_among_the_paths_stops_before_anything_is_sent(tmp_path, capsys):
    log = tmp_path / "a.log"
    make_log(log, 200, seed=24)
    adir = tmp_path / "adir"
    adir.mkdir()
    home = tmp_path / "h"
    code, _out, err = run(capsys, "import", log, adir, "--site", "1", "--home", home)
    one_line_error(code, err, f"analytics-ingest: error: {adir} is a directory; give log files (or - for stdin)")
    assert not home.exists()  # no ledger opened, nothing in an outbox


@pytest.mark.parametrize("bad, text", [
    ("missing.log", "cannot read {tmp}/missing.log: No such file or directory"),
    ("-", "- (stdin) is given more than once"),
])
def test_a_bad_path_after_a_good_one_sends_nothing(tmp_path, capsys, bad, text):
    log = tmp_path / "a.log"
    make_log(log, 200, seed=25)
    home = tmp_path / "h"
    paths = [log, tmp_path / bad] if bad != "-" else ["-", log, "-"]
    code, _out, err = run(capsys, "import", *paths, "--site", "1", "--home", home)
    one_line_error(code, err, text.format(tmp=tmp_path))
    assert not home.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_path_sends_nothing(tmp_path, capsys):
    log, secret = tmp_path / "a.log", tmp_path / "secret.log"
    make_log(log, 200, seed=26)
    secret.write_text("x\n")
    secret.chmod(0)
    code, _out, err = run(capsys, "import", log, secret, "--site", "1", "--home", tmp_path / "h")
    one_line_error(code, err, f"cannot read {secret}: permission denied")
    assert not (tmp_path / "h").exists()


def test_regular_files_are_imported_under_their_real_path(tmp_path, capsys, monkeypatch):
    log = tmp_path / "real" / "a.log"
    log.parent.mkdir()
    manifest = make_log(log, 200, seed=27)
    link = tmp_path / "link.log"
    link.symlink_to(log)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "h"
    code, out, err = run(capsys, "import", "link.log", "real/../real/a.log", "--site", "1", "--home", home, "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [f["path"] for f in files] == [os.path.realpath(log)] * 2
    assert files[1]["message"].startswith("already imported")
    assert len(outbox_lines(home)) == manifest["tracked"]


# -- c) a state directory that is a file -----------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["import", "{log}", "--site", "1"],
    ["status"],
    ["demo"],
    ["replay", "2024-03-14T00:00:00Z", "2024-03-14T01:00:00Z"],
    ["report", "--range", "last_7_days"],
    ["harvest", "--output", "-"],
])
@pytest.mark.parametrize("how", ["--home", "ANALYTICS_INGEST_HOME"])
def test_a_home_that_is_a_file_is_one_line_for_every_subcommand(tmp_path, capsys, monkeypatch, argv, how):
    log = tmp_path / "a.log"
    log.write_text("")
    home = tmp_path / "state"
    home.write_text("not a directory\n")
    argv = [a.replace("{log}", str(log)) for a in argv]
    if how == "--home":
        argv += ["--home", str(home)]
    else:
        monkeypatch.setenv("ANALYTICS_INGEST_HOME", str(home))
    code, _out, err = run(capsys, *argv)
    one_line_error(code, err, f"{how} {home} is a file; give a directory for the state (ledger, outbox, spool)")
    assert home.read_text() == "not a directory\n"


def test_a_home_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    code, _out, err = run(capsys, "status", "--home", tmp_path / "f" / "sub")
    one_line_error(code, err, f"--home {tmp_path}/f/sub: {tmp_path}/f is a file; give a directory")


# -- d) Ctrl-C while worker processes parse ----------------------------------------------------
def test_ctrl_c_during_a_parallel_import_is_one_line_and_a_rerun_completes(tmp_path):
    log = tmp_path / "big.log"
    manifest = make_log(log, 60_000, seed=28)
    assert log.stat().st_size > 8 << 20  # parsed in worker processes
    home = tmp_path / "h"
    env = subprocess_env(ANALYTICS_INGEST_PARALLEL_MIN_BYTES="1")
    cmd = [sys.executable, "-m", "analytics_ingest.cli.main", "import", str(log), "--site", "1", "--home", str(home),
           "--no-progress"]
    # Small batches and one lane: delivery is the bottleneck, so the workers wait for jobs, where an
    # unhandled SIGINT would print one traceback per worker.
    proc = subprocess.Popen([*cmd, "--batch-size", "5", "--recorders", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    outbox = home / "outbox" / "site-1.jsonl"
    deadline = time.monotonic() + 60
    while not (outbox.exists() and outbox.stat().st_size > 0) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the workers are up and waiting for jobs; the import is far from done
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _out, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == ["analytics-ingest: interrupted; delivered batches are recorded, rerun to resume"]
    interrupted = len(outbox_lines(home))
    assert 0 < interrupted < manifest["tracked"]
    # the stopped import's summary says what it read and delivered, not "0 lines read"
    summary = _out.decode()
    read = int(re.search(r"([\d,]+) lines read", summary).group(1).replace(",", ""))
    delivered = int(re.search(r"([\d,]+) requests delivered in this run", summary).group(1).replace(",", ""))
    assert read > 0 and delivered == interrupted, summary

    again = subprocess.run([*cmd, "--json"], env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "loaded"
    pv_ids = [hit["pv_id"] for hit in outbox_lines(home)]
    assert len(pv_ids) == manifest["tracked"] and len(set(pv_ids)) == len(pv_ids)


def test_an_in_process_import_leaves_the_callers_garbage_collector_as_it_was(tmp_path, capsys):
    """The import command freezes what it loaded (gc.freeze: the interpreter's exit and the scan's
    collections skip it, issue #16); called in-process, it gives every object back to the
    collector, or a caller's garbage would be kept for ever."""
    import gc

    log = tmp_path / "a.log"
    make_log(log, 200, seed=3)
    assert gc.get_freeze_count() == 0
    code, out, err = run(capsys, "import", log, "--site", "1", "--home", tmp_path / "h", "--json")
    assert code == 0, err
    assert gc.get_freeze_count() == 0
    # and a whole process does freeze: the frozen objects are counted just before it exits
    probe = ("import atexit, gc, sys\nfrom analytics_ingest.cli.main import main\n"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 10000, file=sys.stderr))\n"
             "sys.argv = ['analytics-ingest', 'import', sys.argv[1], '--site', '1', '--home', sys.argv[2]]\n"
             "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", probe, str(log), str(tmp_path / "h2")], capture_output=True,
                          text=True, timeout=120, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert "frozen True" in done.stderr


def test_a_file_replaced_while_an_earlier_one_imports_is_probed_again(tmp_path, capsys, monkeypatch):
    """Every file is probed before anything is sent; the first is imported at once, and each
    later one is probed again when its turn comes: here the second file becomes random bytes
    while the first is imported, and it is refused before any of it is sent."""
    from analytics_ingest.weblogs.importer import Importer

    first, second = tmp_path / "a.log", tmp_path / "b.log"
    sent = make_log(first, 200, seed=27)["tracked"]
    make_log(second, 200, seed=28)
    home = tmp_path / "h"
    original = Importer.import_file

    def import_file(self, path, options, **kw):
        result = original(self, path, options, **kw)
        if path == os.path.realpath(first):
            second.write_bytes(random.Random(5).randbytes(40_000))
        return result

    monkeypatch.setattr(Importer, "import_file", import_file)
    code, _out, err = run(capsys, "import", first, second, "--site", "1", "--home", home)
    one_line_error(code, err, str(second))
    assert len(outbox_lines(home)) == sent  # the first file only


def test_each_unchanged_file_is_probed_once(tmp_path, capsys, monkeypatch):
    """The command probes every file before it sends anything; import_file does not probe a file
    again that is as it was then (a changed one it does: the test above)."""
    from analytics_ingest.weblogs import importer

    logs = [tmp_path / f"{name}.log" for name in "abc"]
    for seed, log in enumerate(logs, 40):
        make_log(log, 150, seed=seed)
    probes = []
    real = importer.check_usable
    monkeypatch.setattr(importer, "check_usable", lambda path, **kw: probes.append(path) or real(path, **kw))
    code, _out, err = run(capsys, "import", *logs, "--site", "1", "--home", tmp_path / "h")
    assert code == 0, err
    assert sorted(map(str, probes)) == sorted(os.path.realpath(log) for log in logs)
