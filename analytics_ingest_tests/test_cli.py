"""The analytics-ingest command: summaries, exit codes, one-line errors, no token anywhere."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log


def cli(*args, env=None, input=None, home=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MATOMO_", "ANALYTICS_INGEST_"))}
    if home is not None:
        full_env["ANALYTICS_INGEST_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "analytics_ingest.cli.main", *args], env=full_env,
                          input=input, capture_output=True, timeout=120)


def test_demo_runs_offline_into_the_outbox_and_json_has_the_summary_fields(tmp_path):
    done = cli("demo", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    for key in ("lines_total", "tracked", "ignored", "invalid", "status", "lines_per_second"):
        assert key in summary
    assert summary["status"] == "loaded"
    assert summary["lines_total"] == summary["tracked"] + sum(summary["ignored"].values()) + summary["invalid"]
    outbox = (tmp_path / "outbox" / "site-1.jsonl").read_text().splitlines()
    assert len(outbox) == summary["tracked"]
    again = json.loads(cli("demo", "--json", home=tmp_path).stdout)
    assert again["delivered"] == 0 and all(f["message"].startswith("already") for f in again["files"])
    table = cli("status", "--site", "1", "--since", "2024-03-01", home=tmp_path)
    assert table.returncode == 0
    assert b"2024-03-14  loaded" in table.stdout
    # the whole demo history in one usage report (issue #13: days before the demo logs made it exit 1)
    report = cli("report", "--range", "ALL", "--today", "2024-03-16", home=tmp_path)
    assert report.returncode == 0, report.stderr
    assert b"2024-03-14 to 2024-03-15" in report.stdout and b"days_with_data,2," in report.stdout


def test_text_summary_like_import_logs(tmp_path):
    log = tmp_path / "a.log"
    manifest = make_log(log, 500, seed=4)
    done = cli("import", str(log), "--site", "3", "--no-progress", home=tmp_path / "h")
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "Logs import summary" in text and f"{manifest['tracked']} requests tracked" in text
    assert f"{manifest['bots']} requests done by bots" in text


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["import", "missing.log", "--site", "1"], {}, "cannot read missing.log"),
        (["import", "{log}", "--site", "1"], {"MATOMO_URL": "http://127.0.0.1:9"}, "MATOMO_API_TOKEN is not"),
        (["import", "{log}", "--site", "1"], {"MATOMO_URL": "ftp://x", "MATOMO_API_TOKEN": TOKEN}, "http(s) URL"),
        (["import", "{log}", "--site", "1"], {"MATOMO_URL": "http://127.0.0.1:9", "MATOMO_API_TOKEN": TOKEN},
         "not reachable"),
        (["import", "{log}", "--site", "1", "--format", "klingon"], {}, "format"),
        (["import", "{log}", "--site", "1", "--ledger-url", "postgresql+psycopg2://u:pw-Sekr3t@127.0.0.1:1/x"], {},
         "ledger"),
    ],
)
def test_bad_configuration_is_one_line_without_traceback(tmp_path, args, env, message):
    log = tmp_path / "a.log"
    make_log(log, 50, seed=1)
    args = [a.replace("{log}", str(log)) for a in args]
    done = cli(*args, env=env, home=tmp_path / "h")
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert message.lower() in err.lower()
    assert "pw-Sekr3t" not in err and TOKEN not in err


def test_stdin_is_imported_and_a_rerun_of_the_same_input_is_a_no_op(tmp_path):
    log = tmp_path / "a.log"
    manifest = make_log(log, 400, seed=9)
    data = gzip.compress(log.read_bytes())
    first = cli("import", "-", "--site", "1", "--json", input=data, home=tmp_path / "h")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["tracked"] == manifest["tracked"]
    second = cli("import", "-", "--site", "1", "--json", input=data, home=tmp_path / "h")
    assert json.loads(second.stdout)["delivered"] == 0


def test_the_token_never_appears_in_output_urls_ledger_or_outbox(tmp_path):
    log = tmp_path / "access.log"
    make_log(log, 2000, seed=12)
    home = tmp_path / "home"
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        fake.inject("500_after_commit", on_post=2)
        fake.inject("html_200", on_post=4)
        fake.inject("reset", on_post=6)
        env = {"MATOMO_URL": fake.url, "MATOMO_API_TOKEN": TOKEN}
        runs = [
            cli("import", str(log), "--site", "1", "--batch-size", "50", "--retry-delay", "0.01", "--settle-wait", "0.2", home=home, env=env),
            cli("import", str(log), "--site", "1", "--json", home=home, env=env),
            cli("import", str(log), "--site", "1", home=home, env={**env, "MATOMO_API_TOKEN": TOKEN + "x"}),
        ]
        fake.inject_fn(lambda n, reqs: "500_before_commit")
        log2 = tmp_path / "b.log"
        make_log(log2, 300, seed=13)
        runs.append(cli("import", str(log2), "--site", "1", "--retry-max-attempts", "2", "--retry-delay", "0.01", "--settle-wait", "0.2",
                        home=home, env=env))
        assert runs[0].returncode == 0 and runs[3].returncode == 1
        for entry in fake.bulk_log:
            assert TOKEN not in entry["path"] + json.dumps(entry.get("query"))
    blobs = [r.stdout + r.stderr for r in runs]
    blobs += [p.read_bytes() for p in Path(home).rglob("*") if p.is_file()]
    assert blobs
    for blob in blobs:
        assert TOKEN.encode() not in blob


def test_the_worker_process_threshold_is_a_setting_read_once():
    from analytics_ingest.config import DEFAULT_PARALLEL_MIN_BYTES, load_settings
    from analytics_ingest.errors import ConfigError

    assert load_settings(environ={}).parallel_min_bytes == DEFAULT_PARALLEL_MIN_BYTES == 8 << 20
    assert load_settings(environ={"ANALYTICS_INGEST_PARALLEL_MIN_BYTES": "0"}).parallel_min_bytes == 0
    for bad in ("lots", "-1", "1.5"):
        try:
            load_settings(environ={"ANALYTICS_INGEST_PARALLEL_MIN_BYTES": bad})
        except ConfigError as exc:
            assert str(exc) == (f"ANALYTICS_INGEST_PARALLEL_MIN_BYTES={bad!r} is not a whole number of bytes >= 0; "
                                f"unset it for the default ({8 << 20})")
        else:
            raise AssertionError(f"{bad!r} was accepted")
