"""Finding settled files and reading what their content says (EEA's and SciELO's rules)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import time

import pytest

from analytics_ingest.errors import InputError
from analytics_ingest.weblogs.discovery import FileVerdict, Observed, inspect_file, list_candidates, name_day, settled
from analytics_ingest_tests.helpers import make_log

NOW = dt.datetime(2024, 3, 14, 15, 20, tzinfo=dt.timezone.utc)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"


def line(ip: str, when: str, path: str = "/", pad: int = 0) -> str:
    """A combined-format line; ``when`` is "DD/Mon/YYYY:HH:MM:SS +ZZZZ"."""
    return f'{ip} - - [{when}] "GET {path}{"x" * pad} HTTP/1.1" 200 512 "-" "{BROWSER}"\n'


def write_lines(path, lines) -> str:
    path.write_text("".join(lines))
    return str(path)


def rel(root, observed):
    return [os.path.relpath(o.path, root) for o in observed]


# -- listing ------------------------------------------------------------------------------------
def test_candidates_skip_rsync_temp_files_the_live_hour_and_other_names(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ("access_log.2024-03-14-13", "access_log.2024-03-14-14", "access_log.2024-03-14-15",
                 "access_log.2024-03-14-15.gz", ".access_log.2024-03-14-14.Xy12Ab", ".access_log.2024-03-14-14",
                 "sub/access_log.2024-03-13-23", "sub/deeper/access_log.2024-03-12-01", "error_log.2024-03-14-14",
                 "Access_log.2024-03-14-14"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "access_log.1").write_text("x\n")
    (tmp_path / "access_log.folder").mkdir()  # a folder whose name matches is searched, not listed
    (tmp_path / "access_log.folder" / "access_log.2024-03-11-00").write_text("x\n")
    names = rel(tmp_path, list_candidates(tmp_path, "access_log.*", now=NOW))
    assert names == ["access_log.2024-03-14-13", "access_log.2024-03-14-14", "access_log.folder/access_log.2024-03-11-00",
                     "sub/access_log.2024-03-13-23", "sub/deeper/access_log.2024-03-12-01"]
    # An hour later the 15:00 file is rotated: it shows up (with its compressed twin).
    later = rel(tmp_path, list_candidates(tmp_path, "access_log.*", now=NOW + dt.timedelta(hours=1)))
    assert "access_log.2024-03-14-15" in later and "access_log.2024-03-14-15.gz" in later
    # A naive "now" is UTC; an aware one in another zone is converted.
    paris = dt.datetime(2024, 3, 14, 16, 20, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert rel(tmp_path, list_candidates(tmp_path, "access_log.*", now=NOW.replace(tzinfo=None))) == names
    assert rel(tmp_path, list_candidates(tmp_path, "access_log.*", now=paris)) == names


def test_candidates_record_size_and_mtime_and_skip_what_is_not_a_readable_file(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"12345")
    os.utime(log, ns=(1_700_000_000_000_000_001, 1_700_000_000_123_456_789))
    os.symlink(tmp_path / "gone", tmp_path / "access.log.dangling")
    os.mkfifo(tmp_path / "access.log.fifo")
    os.symlink(log, tmp_path / "access.log.link")  # a symlinked file is listed
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "access.log.x").write_text("x\n")
    os.symlink(tmp_path / "elsewhere", tmp_path / "linked_dir")  # a symlinked folder is not followed
    found = list_candidates(tmp_path, "access.log*", now=NOW)
    assert found == [Observed(str(log), 5, 1_700_000_000_123_456_789),
                     Observed(str(tmp_path / "access.log.link"), 5, 1_700_000_000_123_456_789),
                     Observed(str(tmp_path / "elsewhere" / "access.log.x"), 2, found[2].mtime_ns)]
    assert list_candidates(tmp_path / "missing", "*") == []
    assert list_candidates(log, "*") == []  # a file as root


def test_ten_thousand_files_are_listed_quickly(tmp_path):
    for d in range(10):
        folder = tmp_path / f"host{d}"
        folder.mkdir()
        for i in range(1000):
            (folder / f"access_log.{i}").write_bytes(b"")
    (tmp_path / "host0" / "error_log.1").write_bytes(b"")
    started = time.perf_counter()
    found = list_candidates(tmp_path, "access_log.*")
    seconds = time.perf_counter() - started
    assert len(found) == 10_000 and found == sorted(found, key=lambda o: o.path)
    print(f"list_candidates: 10,000 files in {seconds:.3f} s")


# -- settling -----------------------------------------------------------------------------------
def test_files_settle_when_size_and_mtime_hold_for_two_looks(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("a\n")

    def look(state):
        state, stable = settled(state, list_candidates(tmp_path, "*.log"))
        return json.loads(json.dumps(state)), [os.path.basename(o.path) for o in stable]  # a sensor cursor

    state, stable = look({})
    assert stable == [] and state == {str(a): [2, a.stat().st_mtime_ns]}  # new: not yet
    b.write_text("b\n")
    state, stable = look(state)
    assert stable == ["a.log"]  # unchanged: settled; b is new
    with open(a, "a") as fh:
        fh.write("more\n")  # a grows (rsync still writing)
    state, stable = look(state)
    assert stable == ["b.log"]
    state, stable = look(state)
    assert stable == ["a.log", "b.log"]  # a held still for a look
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 1_000_000_000))  # same size, new mtime
    state, stable = look(state)
    assert stable == ["a.log"]
    b.unlink()  # vanished: forgotten
    state, stable = look(state)
    assert stable == ["a.log"] and list(state) == [str(a)]
    assert settled(None, [])[0] == {} and settled({"x": [1]}, [Observed("x", 1, 2)])[1] == []


# -- inspecting ---------------------------------------------------------------------------------
def test_days_are_the_site_timezones_days(tmp_path):
    path = write_lines(tmp_path / "access.log.2024-03-14",
                       [line(f"81.2.69.{i}", "14/Mar/2024:10:10:00 +0000") for i in range(30)]
                       + [line(f"81.2.70.{i}", "14/Mar/2024:23:10:00 +0000") for i in range(10)])
    utc = inspect_file(path)
    assert utc == FileVerdict({"2024-03-14": 40}, "2024-03-14", "2024-03-14", True, None, 0.0, "combined")
    paris = inspect_file(path, timezone="Europe/Paris")  # 23:10 UTC is 00:10 on the 15th in Paris
    assert paris.days == {"2024-03-14": 30, "2024-03-15": 10} and paris.probable_day == "2024-03-14"
    sao_paulo = inspect_file(path, timezone="America/Sao_Paulo")  # UTC-3: all on the 14th
    assert sao_paulo.days == {"2024-03-14": 40}


def test_half_hour_timezones_split_an_utc_hour(tmp_path):
    # Asia/Kolkata is UTC+05:30: 18:10 UTC is 23:40 on the 14th, 18:40 UTC is 00:10 on the 15th.
    path = write_lines(tmp_path / "access.log", [line("81.2.69.1", "14/Mar/2024:18:10:00 +0000")] * 3
                       + [line("81.2.69.2", "14/Mar/2024:18:40:00 +0000")] * 2)
    assert inspect_file(path, timezone="Asia/Kolkata").days == {"2024-03-14": 3, "2024-03-15": 2}


def test_a_big_plain_file_spanning_midnight_in_paris_shows_both_days_from_its_tail(tmp_path):
    # 20:00 UTC lines, then 23:30 UTC lines (00:30 on the 15th in Paris) in the last MiB only.
    head = [line(f"81.2.69.{i % 250}", "14/Mar/2024:20:00:00 +0000", f"/p{i}", pad=300) for i in range(6000)]
    tail = [line(f"81.2.71.{i % 250}", "14/Mar/2024:23:30:00 +0000", f"/q{i}", pad=300) for i in range(4000)]
    path = write_lines(tmp_path / "access_log.2024-03-14", head + tail)
    assert os.path.getsize(path) > 3 << 20
    verdict = inspect_file(path, timezone="Europe/Paris", sample_lines=1000)
    assert verdict.valid and verdict.probable_day == "2024-03-15"
    assert verdict.days["2024-03-14"] == 1000  # the head sample: the first 1000 lines only
    assert 2000 < verdict.days["2024-03-15"] < 4000  # the lines of the last MiB
    assert inspect_file(path, timezone="UTC", sample_lines=1000).days.keys() == {"2024-03-14"}


def test_head_and_tail_never_count_a_line_twice(tmp_path):
    lines = [line(f"81.2.69.{i % 250}", f"14/Mar/2024:{i // 300:02d}:00:00 +0000", f"/p{i}", pad=100)
             for i in range(7000)]
    path = write_lines(tmp_path / "access.log", lines)
    size = os.path.getsize(path)
    assert (1 << 20) < size < (2 << 20)
    starts, offset = [], 0
    for text in lines:
        starts.append(offset)
        offset += len(text)
    in_last_mib = sum(1 for start in starts if start >= size - (1 << 20))
    for sample in (1, 1000, 3000, 5000, 7000, 10_000):
        # The tail holds the whole lines of the last MiB that the head did not take.
        expected = min(7000, sample + min(in_last_mib, 7000 - sample))
        assert sum(inspect_file(path, sample_lines=sample).days.values()) == expected, sample
    assert sum(inspect_file(path, sample_lines=3000).days.values()) == 7000
    small = write_lines(tmp_path / "small.log", lines[:100])
    assert sum(inspect_file(small, sample_lines=10).days.values()) == 100  # a small file is its own tail


def test_a_generated_two_day_file_compressed_is_read_whole(tmp_path):
    plain = tmp_path / "access.log.2024-03-14"
    manifest = make_log(plain, 20_000, seed=5, date="2024-03-14", tz="+0100", days=2)
    compressed = tmp_path / "access.log.2024-03-14.gz"
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    whole = inspect_file(str(compressed), sample_lines=500)
    parsed = manifest["lines"] - manifest["counts"]["invalid"] if "counts" in manifest else None
    assert set(whole.days) == {"2024-03-14", "2024-03-15"} and whole.valid and whole.format_name == "combined"
    assert sum(whole.days.values()) > 19_000 and (parsed is None or sum(whole.days.values()) == parsed)
    sampled = inspect_file(str(plain), sample_lines=500)  # plain: head and tail only
    assert set(sampled.days) == {"2024-03-14", "2024-03-15"} and sum(sampled.days.values()) < 10_000


def test_a_truncated_gzip_is_still_inspected(tmp_path):
    src = tmp_path / "src.log"
    make_log(src, 2000, seed=2, date="2024-03-14", tz="+0000")
    data = gzip.compress(src.read_bytes())
    path = tmp_path / "access.log.2024-03-14.gz"
    path.write_bytes(data[: len(data) // 2])
    verdict = inspect_file(str(path))
    assert verdict.valid and verdict.probable_day == "2024-03-14" and 0 < sum(verdict.days.values()) < 2000


def test_local_ips_make_a_file_invalid_unless_enough_are_remote(tmp_path):
    def share(local, remote, name):
        lines = ([line(ip, "14/Mar/2024:10:00:00 +0000") for ip in ("10.0.0.1", "192.168.1.9", "127.0.0.1", "::1",
                                                                      "fe80::1", "172.16.0.3")] * 50)[:local]
        lines += [line(f"81.2.69.{i % 250}", "14/Mar/2024:10:00:00 +0000") for i in range(remote)]
        return inspect_file(write_lines(tmp_path / name, lines))

    proxy = share(300, 0, "proxy.log")
    assert not proxy.valid and proxy.local_ip_share == 1.0
    assert proxy.reason.startswith("100% of sampled client IPs are local addresses")
    few = share(95, 5, "few.log")
    assert not few.valid and few.local_ip_share == 0.95 and "5% public" in few.reason
    assert share(85, 15, "some.log").valid  # remote share over 10 %
    assert share(40, 60, "most.log").valid  # remote share over local share


def test_content_far_from_the_names_date_is_invalid(tmp_path):
    far = tmp_path / "access.2024-05-01.log"
    make_log(far, 300, seed=1, date="2024-03-14", tz="+0000")
    verdict = inspect_file(str(far))
    assert not verdict.valid and (verdict.name_day, verdict.probable_day) == ("2024-05-01", "2024-03-14")
    assert verdict.reason == "content dates (2024-03-14) are 48 days from the name's date (2024-05-01)"
    near = tmp_path / "access.2024-03-19.log"  # 5 days: still fine
    near.write_bytes(far.read_bytes())
    assert inspect_file(str(near)).valid
    assert not inspect_file(str(near), max_days_from_name=4).valid
    undated = tmp_path / "access.log"
    undated.write_bytes(far.read_bytes())
    assert inspect_file(str(undated)).valid and inspect_file(str(undated)).name_day is None
    both = write_lines(tmp_path / "lan.20240101.log", [line("10.1.1.1", "14/Mar/2024:10:00:00 +0000")] * 5)
    reason = inspect_file(both).reason
    assert "local addresses" in reason and "; content dates (2024-03-14) are 73 days" in reason


def test_files_that_are_not_access_logs(tmp_path):
    junk = write_lines(tmp_path / "notes.2024-03-14.txt", ["hello\n", "world\n"])
    assert inspect_file(junk) == FileVerdict({}, None, "2024-03-14", False,
                                             "not an access log: no line matched a known format", 0.0, None)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 400)
    assert inspect_file(str(binary)).reason.startswith("not an access log")
    empty = tmp_path / "access.log.2024-03-14"
    empty.write_bytes(b"")
    assert not inspect_file(str(empty)).valid and "empty" in inspect_file(str(empty)).reason
    long_lines = write_lines(tmp_path / "long.log", ["x" * 70_000 + "\n", line("81.2.69.1", "14/Mar/2024:10:00:00 +0000")])
    assert inspect_file(long_lines).days == {"2024-03-14": 1}


def test_junk_before_the_log_lines_and_a_given_format(tmp_path):
    lines = ["garbage line\n"] * 120 + [line("81.2.69.1", "14/Mar/2024:10:00:00 +0000")] * 30
    path = write_lines(tmp_path / "access.log", lines)
    assert inspect_file(path).days == {"2024-03-14": 30}
    assert inspect_file(path, format_name="combined").format_name == "combined"
    wrong = inspect_file(path, format_name="iis")
    assert not wrong.valid and wrong.reason == "no line matched the format iis; check the site's format"


def test_w3c_headers_are_honoured(tmp_path):
    path = write_lines(tmp_path / "u_ex240314.log", [
        "#Software: Microsoft Internet Information Services 10.0\n", "#Version: 1.0\n",
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
        "cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n",
        "2024-03-14 10:00:00 10.0.0.1 GET /index.html - 443 - 81.2.69.1 Mozilla/5.0 - 200 0 0 15\n",
        "2024-03-14 23:00:00 10.0.0.1 GET /a.html - 443 - 81.2.69.2 Mozilla/5.0 - 200 0 0 15\n",
    ])
    verdict = inspect_file(path, timezone="Europe/Paris")
    assert verdict.format_name == "iis" and verdict.days == {"2024-03-14": 1, "2024-03-15": 1}


def test_an_unreadable_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        inspect_file(str(tmp_path / "missing.log"))
    with pytest.raises(InputError, match="cannot read"):
        inspect_file(str(tmp_path))  # a folder


def test_name_day_needs_a_real_calendar_date():
    assert name_day("2022-03-01_scielo-br.log.gz") == "2022-03-01"
    assert name_day("access_log.2024-03-14-13") == "2024-03-14"
    assert name_day("access.20240229.log") == "2024-02-29"
    assert name_day("access.log-20240314120000.gz") == "2024-03-14"
    assert name_day("access.2023-02-30.log") is None
    assert name_day("access.12024-03-14.log") is None and name_day("access.log.1") is None
    assert name_day("node2024-13-01.2024-03-15.log") == "2024-03-15"
