"""Finding settled files and reading what their content says (EEA's and SciELO's rules)."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import time

from analytics_ingest.discovery import inspect_file, list_candidates, name_day, settled
from analytics_ingest.rsync import run_pull_commands
from analytics_ingest_tests.helpers import make_log

NOW = dt.datetime(2024, 3, 14, 15, 20, tzinfo=dt.timezone.utc)


def test_candidates_skip_rsync_temp_files_the_live_hour_and_other_names(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("access_log.2024-03-14-13", "access_log.2024-03-14-14", "access_log.2024-03-14-15",
                 ".access_log.2024-03-14-14.Xy12Ab", "sub/access_log.2024-03-13-23", "error_log.2024-03-14-14"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "access_log.1").write_text("x\n")
    names = [os.path.relpath(o.path, tmp_path) for o in list_candidates(tmp_path, "access_log.*", now=NOW)]
    assert names == ["access_log.2024-03-14-13", "access_log.2024-03-14-14", "sub/access_log.2024-03-13-23"]
    assert list_candidates(tmp_path / "missing", "*") == []


def test_ten_thousand_files_are_listed_quickly(tmp_path):
    for i in range(10_000):
        (tmp_path / f"access.log.{i}").write_bytes(b"")
    started = time.perf_counter()
    found = list_candidates(tmp_path, "access.log.*")
    seconds = time.perf_counter() - started
    assert len(found) == 10_000
    print(f"list_candidates: 10,000 files in {seconds:.3f} s")


def test_a_file_settles_when_size_and_mtime_hold_for_two_looks(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("a\n")
    state, stable = settled({}, list_candidates(tmp_path, "*"))
    assert stable == []
    state, stable = settled(state, list_candidates(tmp_path, "*"))
    assert [o.path for o in stable] == [str(path)]
    with open(path, "a") as fh:
        fh.write("b\n")  # grew: not settled until it holds still again
    state, stable = settled(state, list_candidates(tmp_path, "*"))
    assert stable == []
    path.unlink()
    state, stable = settled(state, list_candidates(tmp_path, "*"))
    assert state == {} and stable == []


def test_content_days_in_the_site_timezone_and_across_midnight(tmp_path):
    path = tmp_path / "access.log.2024-03-14"
    lines = [f'81.2.69.{i % 200} - - [14/Mar/2024:{h:02d}:10:00 +0000] "GET /p{i} HTTP/1.1" 200 10 "-" "Mozilla/5.0"'
             for i, h in enumerate([10] * 30 + [23] * 10)]
    path.write_text("\n".join(lines) + "\n")
    utc = inspect_file(str(path))
    assert utc.valid and utc.days == {"2024-03-14": 40} and utc.name_day == "2024-03-14"
    paris = inspect_file(str(path), timezone="Europe/Paris")  # 23:10 UTC is 00:10 on the 15th in Paris
    assert paris.days == {"2024-03-14": 30, "2024-03-15": 10} and paris.probable_day == "2024-03-14"


def test_a_big_plain_file_spanning_midnight_shows_both_days_from_its_tail(tmp_path):
    path = tmp_path / "access.log.2024-03-14"
    make_log(path, 60_000, seed=5, date="2024-03-14", tz="+0000", days=2)
    verdict = inspect_file(str(path))
    assert set(verdict.days) == {"2024-03-14", "2024-03-15"}


def test_invalid_files_say_why(tmp_path):
    local = tmp_path / "access.log.2024-03-14"
    local.write_text("".join(f'10.0.0.{i} - - [14/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "M"\n'
                             for i in range(50)))
    assert "local addresses" in inspect_file(str(local)).reason
    far = tmp_path / "access.2024-05-01.log"
    make_log(far, 300, seed=1, date="2024-03-14", tz="+0000")
    verdict = inspect_file(str(far))
    assert not verdict.valid and "48 days from the name's date (2024-05-01)" in verdict.reason
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    assert inspect_file(str(junk)).reason.startswith("not an access log")


def test_a_truncated_gzip_is_still_inspected(tmp_path):
    src = tmp_path / "src.log"
    make_log(src, 2000, seed=2, date="2024-03-14", tz="+0000")
    data = gzip.compress(src.read_bytes())
    path = tmp_path / "access.log.2024-03-14.gz"
    path.write_bytes(data[: len(data) // 2])
    verdict = inspect_file(str(path))
    assert verdict.valid and verdict.probable_day == "2024-03-14"


def test_name_day_needs_a_real_calendar_date():
    assert name_day("2022-03-01_scielo-br.log.gz") == "2022-03-01"
    assert name_day("access.20240229.log") == "2024-02-29"
    assert name_day("access.2023-02-30.log") is None


def test_rsync_commands_time_out_and_report_failures():
    started = time.monotonic()
    slow, failing, fine = run_pull_commands(["sleep 30", "echo nope >&2; exit 3", "echo ${GREETING}"],
                                            timeout=1.0, env={**os.environ, "GREETING": "hi"})
    assert time.monotonic() - started < 10
    assert slow.timed_out and slow.returncode is None
    assert failing.returncode == 3 and "nope" in failing.output
    assert fine.returncode == 0 and fine.output.strip() == "hi" and fine.command == "echo ${GREETING}"
