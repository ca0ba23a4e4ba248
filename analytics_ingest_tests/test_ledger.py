"""The ledger on SQLite, PostgreSQL and MariaDB: schema, files, leases, lanes, summaries, days."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert, inspect, select

from analytics_ingest.errors import ConfigError
from analytics_ingest.ledger import DayRecord, FileRecord, Ledger, migrate, schema
from analytics_ingest.vocabulary import (
    DAY_CALCULATED,
    DAY_DONE,
    DAY_LOADED,
    DAY_PARTIAL,
    DAY_PRETABLE,
    DAY_QUEUE,
    FILE_FAILED,
    FILE_INVALID,
    FILE_LOADED,
    FILE_LOADING,
    FILE_PARTIAL,
    FILE_QUEUE,
)
from analytics_ingest_tests.helpers import expected_files_on, put_day_at

D1 = dt.date(2024, 3, 14)
D2 = D1 + dt.timedelta(days=1)
D3 = D1 + dt.timedelta(days=2)


@pytest.fixture
def ledger(ledger_url):
    led = Ledger(ledger_url)
    yield led
    led.close()


def _register(led: Ledger, path: str = "/logs/a.log.gz", site_id: int = 1, **kw) -> FileRecord:
    # A file is its content: give each test path its own (made-up) content fingerprint.
    fingerprint = hashlib.sha256(path.encode()).hexdigest()
    base = dict(path=path, site_id=site_id, size=1000, fingerprint=fingerprint, fingerprint_len=1000)
    base.update(kw)
    return led.register_file(**base)


# --- schema -------------------------------------------------------------------------------------
def test_migrate_twice_is_a_noop_and_matches_schema(ledger_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # migrations are found from the package, not the cwd
    led = Ledger(ledger_url)
    try:
        engine = led._engine
        migrate.upgrade(engine)  # second run: nothing to do
        Ledger(ledger_url).close()  # third, through a new instance
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision() == "0005"
            diffs = _schema_diffs(conn)
            tables = set(inspect(conn).get_table_names())
            day_indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("ledger_file_day")}
        assert diffs == []
        assert tables == set(schema.metadata.tables) | {migrate.VERSION_TABLE}
        assert day_indexes.get("ix_ledger_file_day_day") == ["day"]
    finally:
        led.close()


def _schema_diffs(conn) -> list:
    ctx = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE, "compare_type": True})
    return compare_metadata(ctx, schema.metadata)


def test_upgrade_from_0001_keeps_data(ledger_url):
    """A database created at revision 0001 and holding rows upgrades to head (and back) without losing them."""
    old = Ledger(ledger_url, migrate=False)  # only for its engine: the database stays at 0001
    try:
        engine = old._engine
        migrate.upgrade(engine, "0001")
        now = dt.datetime(2024, 3, 15, 2, 0, 0, 123456, tzinfo=dt.timezone.utc)
        now_naive = now.replace(tzinfo=None)
        with engine.begin() as conn:
            assert migrate.current_revision(conn) == "0001"
            assert "ledger_file_day" not in inspect(conn).get_table_names()
            # the tables as they were at 0001 (today's metadata has columns 0001 did not)
            old_meta = MetaData()
            old_meta.reflect(conn)
            T = old_meta.tables
            file_row = dict(site_id=4, path="/logs/old.log.gz", path_hash="0" * 64, size=10, fingerprint="f" * 64,
                            fingerprint_len=10, day=D1, status=FILE_LOADED, invalid_reason=None, plan='{"lanes": 2}',
                            lease_owner=None, lease_expires_at=None, created_at=now_naive, updated_at=now_naive)
            fid = conn.execute(insert(T["ledger_file"]).values(**file_row)).inserted_primary_key[0]
            file_row["path_hash"] = "1" * 64
            file_row.update(path="/logs/old-2.log.gz", day=D2, status=FILE_QUEUE)
            fid2 = conn.execute(insert(T["ledger_file"]).values(**file_row)).inserted_primary_key[0]
            conn.execute(insert(T["ledger_lane"]).values(file_id=fid, lane=0, delivered_through=5_000_000_000,
                                                         in_flight_through=None, updated_at=now_naive))
            conn.execute(insert(T["ledger_rejected_line"]).values(file_id=fid, line_no=7))
            conn.execute(insert(T["ledger_summary"]).values(file_id=fid, status=FILE_LOADED, delivered=9,
                                                            started_at=now_naive))
            conn.execute(insert(T["ledger_expected_files"]).values(site_id=4, start_day=D1, end_day=None, count=1))
            conn.execute(insert(T["ledger_day"]).values(site_id=4, day=D1, status=DAY_PRETABLE, expected=1, found=1,
                                                        loaded=1, updated_at=now_naive))
    finally:
        old.close()

    def check_kept(led: Ledger, day_rows_touched: bool = False) -> None:
        rec = led.get_file_by_id(fid)
        assert (rec.site_id, rec.path, rec.day, rec.status, rec.plan, rec.created_at) == (
            4, "/logs/old.log.gz", D1, FILE_LOADED, '{"lanes": 2}', now)
        assert led.get_file_by_id(fid2).day == D2
        assert led.lanes(fid) == {0: (5_000_000_000, None)}
        assert led.rejected_lines(fid) == [7]
        (summary,) = led.summaries(fid)
        assert (summary["status"], summary["delivered"], summary["started_at"]) == (FILE_LOADED, 9, now)
        day = led.day_statuses(4)[0]
        assert (day.day, day.status, day.found, day.loaded) == (D1, DAY_PRETABLE, 1, 1)
        if not day_rows_touched:
            assert len(led.day_statuses(4)) == 1 and day.updated_at == now
        assert expected_files_on(led, 4, D1) == 1  # last: it refreshes the day's row

    led = Ledger(ledger_url)  # migrates to head
    try:
        with led._engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision() == "0005"
            assert _schema_diffs(conn) == []
        check_kept(led)
        # files from before 0002 have no content days and count toward their day column
        assert led.file_days(fid) == {}
        assert [f.id for f in led.list_files(day=D1)] == [fid]
        assert led.recompute_day_status(4, D1, force=True) == DAY_LOADED
        assert led.recompute_day_status(4, D2) == DAY_QUEUE
        led.set_file_days(fid, {D1: 3, D2: 1})
        assert led.recompute_day_status(4, D2) == DAY_PARTIAL

        # downgrade to 0001 drops only the new table; upgrading again starts it empty
        led._release_thread_connection()
        migrate.downgrade(led._engine, "0001")
        with led._engine.connect() as conn:
            assert migrate.current_revision(conn) == "0001"
            assert "ledger_file_day" not in inspect(conn).get_table_names()
            assert conn.execute(select(schema.files.c.id).order_by(schema.files.c.id)).scalars().all() == [fid, fid2]
        led.close()
        led = Ledger(ledger_url)  # upgrades again; the rows from before destinations are adopted
        assert {f.id for f in led.list_files(site_id=4)} == {fid, fid2}
        put_day_at(led, 4, D1, DAY_PRETABLE)
        check_kept(led, day_rows_touched=True)
        assert led.file_days(fid) == {}
    finally:
        led.close()


# --- files --------------------------------------------------------------------------------------
def test_register_get_update_list(ledger):
    path = "/logs/übersicht/" + "x" * 900 + ".log"  # long, non-ASCII: fits on every backend
    rec = _register(ledger, path=path, day=D1)
    assert rec.status == FILE_QUEUE and rec.day == D1 and rec.plan is None
    assert rec.created_at.tzinfo is not None and rec.created_at.utcoffset() == dt.timedelta(0)
    assert ledger.get_file(1, path) == rec
    assert ledger.get_file_by_id(rec.id) == rec
    assert ledger.get_file(2, path) is None
    assert ledger.get_file(1, "/logs/other.log") is None
    with pytest.raises(KeyError):
        ledger.get_file_by_id(rec.id + 1000)

    # registering the same content again (under any name) returns the existing record unchanged
    again = _register(ledger, path="/logs/renamed.log", size=5, fingerprint=rec.fingerprint,
                      day=dt.date(2020, 1, 1))
    assert again == rec
    # other content at the same path is another file; the path now names the newest
    newer = _register(ledger, path=path, fingerprint="other")
    assert newer.id != rec.id and ledger.get_file(1, path) == newer
    assert _register(ledger, path=path, fingerprint="other") == newer
    # --force registers a content that starts like a known one as another variant
    forced = ledger.register_file(path=path, site_id=1, size=5, fingerprint="third", fingerprint_len=5,
                                  content_head=newer.content_head, new_variant=True)
    assert (forced.content_head, forced.variant) == (newer.content_head, newer.variant + 1)
    # the same path on another site is another file
    other_site = _register(ledger, path=path, site_id=2)
    assert other_site.id != rec.id

    ledger.update_file(rec.id, size=2000, fingerprint="g" * 64, fingerprint_len=1500, status=FILE_LOADING,
                       plan='{"lanes": 4}', invalid_reason=None, day=dt.date(2024, 3, 15))
    got = ledger.get_file_by_id(rec.id)
    assert (got.size, got.fingerprint, got.fingerprint_len, got.status, got.plan, got.day) == (
        2000, "g" * 64, 1500, FILE_LOADING, '{"lanes": 4}', dt.date(2024, 3, 15))
    assert got.updated_at >= rec.updated_at and got.created_at == rec.created_at

    with pytest.raises(ValueError):
        ledger.update_file(rec.id, status="done-ish")
    with pytest.raises(ValueError):
        ledger.update_file(rec.id, lease_owner="me")
    with pytest.raises(ValueError):
        _register(ledger, path="/x", status="nope")
    with pytest.raises(KeyError):
        ledger.update_file(rec.id + 1000, status=FILE_FAILED)

    _register(ledger, path="/logs/b.log", day=D1, status=FILE_INVALID)
    assert [f.path for f in ledger.list_files(site_id=1)] == [path, path, path, "/logs/b.log"]
    assert [f.path for f in ledger.list_files(day=D1)] == ["/logs/b.log"]
    assert [f.id for f in ledger.list_files(status=FILE_LOADING)] == [rec.id]
    assert len(ledger.list_files()) == 5


# --- content days -------------------------------------------------------------------------------
def test_file_days_round_trip(ledger):
    a = _register(ledger, day=D1)
    b = _register(ledger, path="/logs/b.log", day=D1)
    assert ledger.file_days(a.id) == {}
    ledger.set_file_days(a.id, {D2: 3, D1: 5_000_000_000})  # hits beyond 32 bits
    assert ledger.file_days(a.id) == {D1: 5_000_000_000, D2: 3}
    assert list(ledger.file_days(a.id)) == [D1, D2]  # ordered by day
    assert ledger.file_days(b.id) == {}

    ledger.set_file_days(a.id, {D2: 4, D3: 0})  # replaces the whole set
    assert ledger.file_days(a.id) == {D2: 4, D3: 0}
    ledger.set_file_days(a.id, {dt.datetime(2024, 3, 14, 23, 59): 2})  # a datetime stands for its date
    assert ledger.file_days(a.id) == {D1: 2}

    # bad input changes nothing
    for bad in ({D1: -1}, {D1: 1.5}, {D1: "3"}, {None: 1}, {"2024-03-14": 1},
                {dt.datetime(2024, 3, 14, 1): 1, dt.datetime(2024, 3, 14, 2): 1}):
        with pytest.raises(ValueError):
            ledger.set_file_days(a.id, bad)
    with pytest.raises(KeyError):
        ledger.set_file_days(a.id + 1000, {D1: 1})
    assert ledger.file_days(a.id) == {D1: 2}
    assert ledger.file_days(a.id + 1000) == {}

    ledger.set_file_days(a.id, {})  # clears
    assert ledger.file_days(a.id) == {}


def test_set_file_days_concurrently_replaces_whole_sets(ledger_url):
    setup = Ledger(ledger_url)
    writers = [Ledger(ledger_url, migrate=False) for _ in range(4)]
    try:
        fid = _register(setup).id
        sets = [{D1 + dt.timedelta(days=i + k): 10 * i + k for k in range(3)} for i in range(len(writers))]
        barrier = threading.Barrier(len(writers))
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                barrier.wait()
                for _ in range(10):
                    writers[i].set_file_days(fid, sets[i])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert setup.file_days(fid) in sets  # one writer's set, never a mix
    finally:
        for led in writers:
            led.close()
        setup.close()


def test_file_spanning_two_days_feeds_both(ledger):
    site = 5
    a = _register(ledger, path="/logs/a", site_id=site, day=D1).id  # 23:00 on D1 to 01:00 on D2
    b = _register(ledger, path="/logs/b", site_id=site, day=D2).id  # no content days: counts by `day`
    c = _register(ledger, path="/logs/c", site_id=site, day=D3).id  # named D2, content (so its day) all on D3
    bad = _register(ledger, path="/logs/bad", site_id=site, day=D1, status=FILE_INVALID).id
    elsewhere = _register(ledger, path="/logs/a", site_id=site + 1, day=D1).id
    ledger.set_file_days(a, {D1: 10, D2: 3})
    ledger.set_file_days(c, {D3: 7})
    ledger.set_file_days(bad, {D1: 1, D2: 1})
    ledger.set_file_days(elsewhere, {D1: 1, D2: 1})

    # listing by day: the `day` column or a content day, each file once, only the site's
    assert [f.id for f in ledger.list_files(site_id=site, day=D1)] == [a, bad]
    assert [f.id for f in ledger.list_files(site_id=site, day=D2)] == [a, b, bad]
    assert [f.id for f in ledger.list_files(site_id=site, day=D3)] == [c]
    assert [f.id for f in ledger.list_files(day=D2, status=FILE_QUEUE)] == [a, b, elsewhere]
    assert ledger.list_files(site_id=site, day=D3 + dt.timedelta(days=1)) == []

    def counts(day):
        rec = next(r for r in ledger.day_statuses(site) if r.day == day)
        return rec.status, rec.found, rec.loaded

    for day in (D1, D2, D3):
        assert ledger.recompute_day_status(site, day) == DAY_QUEUE
    assert counts(D1) == (DAY_QUEUE, 1, 0)  # a (bad is invalid)
    assert counts(D2) == (DAY_QUEUE, 2, 0)  # a and b; c's content is not on D2
    assert counts(D3) == (DAY_QUEUE, 1, 0)  # c

    ledger.update_file(a, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D1) == DAY_LOADED
    assert ledger.recompute_day_status(site, D2) == DAY_PARTIAL  # b still to load
    ledger.update_file(b, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D2) == DAY_LOADED
    assert counts(D2) == (DAY_LOADED, 2, 2)
    ledger.update_file(c, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D3) == DAY_LOADED

    # a file over two days feeds both; the next day is complete only once its own file is loaded
    s2 = site + 2
    x = _register(ledger, path="/logs/x", site_id=s2, day=D2).id
    ledger.set_file_days(x, {D2: 5, D3: 2})
    assert [ledger.recompute_day_status(s2, d) for d in (D1, D2, D3)] == [DAY_QUEUE] * 3
    ledger.update_file(x, status=FILE_PARTIAL)
    assert [ledger.recompute_day_status(s2, d) for d in (D2, D3)] == [DAY_PARTIAL] * 2
    ledger.update_file(x, status=FILE_LOADED)
    assert [ledger.recompute_day_status(s2, d) for d in (D1, D2, D3)] == [DAY_QUEUE, DAY_LOADED, DAY_PARTIAL]
    y = _register(ledger, path="/logs/y", site_id=s2, day=D3).id
    ledger.set_file_days(y, {D3: 9})
    assert ledger.recompute_day_status(s2, D3) == DAY_PARTIAL  # y found, not loaded
    ledger.update_file(y, status=FILE_LOADED)
    assert ledger.recompute_day_status(s2, D3) == DAY_LOADED

    # without content days a file falls back to its `day` column
    ledger.set_file_days(a, {})
    ledger.update_file(b, status=FILE_QUEUE)
    assert ledger.recompute_day_status(site, D2) == DAY_QUEUE
    assert counts(D2) == (DAY_QUEUE, 1, 0)
    assert [f.id for f in ledger.list_files(site_id=site, day=D2)] == [b, bad]


# --- leases -------------------------------------------------------------------------------------
def test_lease_exclusive_across_instances_with_expiry_and_renewal(ledger_url):
    a, b = Ledger(ledger_url), Ledger(ledger_url, migrate=False)
    try:
        fid = _register(a).id
        assert a.lease_holder(fid) is None
        assert a.acquire_lease(fid, "A", 30)
        assert not b.acquire_lease(fid, "B", 30)
        assert a.acquire_lease(fid, "A", 30)  # re-entrant for the same owner
        owner, until = b.lease_holder(fid)
        assert owner == "A" and until > dt.datetime.now(dt.timezone.utc)
        assert not b.renew_lease(fid, "B", 30)
        assert a.renew_lease(fid, "A", 30)
        b.release_lease(fid, "B")  # not the holder: no effect
        assert b.lease_holder(fid)[0] == "A"
        a.release_lease(fid, "A")
        assert b.lease_holder(fid) is None

        # expiry: a lapsed lease can be taken, and its old holder cannot renew it
        assert b.acquire_lease(fid, "B", 0.3)
        assert not a.acquire_lease(fid, "A", 30)
        time.sleep(0.45)
        assert a.lease_holder(fid) is None
        assert a.acquire_lease(fid, "A", 30)
        assert not b.renew_lease(fid, "B", 30)
        assert a.lease_holder(fid)[0] == "A"
        assert not a.acquire_lease(fid + 1000, "A", 30)  # no such file
    finally:
        a.close()
        b.close()


def test_lease_race_has_exactly_one_winner(ledger_url):
    setup = Ledger(ledger_url)
    contenders = [Ledger(ledger_url, migrate=False) for _ in range(8)]  # 8 engines, 8 connections
    try:
        for round_no in range(3):
            fid = _register(setup, path=f"/logs/race-{round_no}.log").id
            barrier = threading.Barrier(len(contenders))
            results: dict[int, bool] = {}
            errors: list[BaseException] = []

            def run(i: int) -> None:
                try:
                    barrier.wait()
                    results[i] = contenders[i].acquire_lease(fid, f"owner-{i}", 60)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert not errors
            winners = [i for i, won in results.items() if won]
            assert len(results) == 8 and len(winners) == 1
            assert setup.lease_holder(fid)[0] == f"owner-{winners[0]}"
    finally:
        for led in contenders:
            led.close()
        setup.close()


# --- lanes --------------------------------------------------------------------------------------
def test_lanes_round_trip(ledger):
    fid = _register(ledger).id
    other = _register(ledger, path="/logs/other.log").id
    assert ledger.lanes(fid) == {}
    ledger.mark_in_flight(fid, 0, 200)  # first batch of lane 0 in flight
    ledger.mark_in_flight(fid, 3, 150)
    assert ledger.lanes(fid) == {0: (0, 200), 3: (0, 150)}
    ledger.mark_in_flight(fid, 0, 410, delivered_through=200)  # confirmed + next, one write
    assert ledger.lanes(fid)[0] == (200, 410)
    ledger.mark_in_flight(fid, 0, None, delivered_through=410)  # last batch confirmed
    ledger.mark_in_flight(fid, 5, None, delivered_through=99)  # first write may be a delivery
    assert ledger.lanes(fid) == {0: (410, None), 3: (0, 150), 5: (99, None)}
    assert ledger.lanes(other) == {}
    big = 3_000_000_000  # line numbers beyond 32 bits
    ledger.mark_in_flight(other, 1, big + 1, delivered_through=big)
    assert ledger.lanes(other) == {1: (big, big + 1)}

    ledger.add_rejected_lines(fid, [17, 5, 17])
    ledger.add_rejected_lines(fid, [5, 40])  # a re-sent batch reports the same lines again
    ledger.add_rejected_lines(fid, [])
    assert ledger.rejected_lines(fid) == [5, 17, 40]
    assert ledger.rejected_lines(other) == []


def test_thread_connections_are_returned_when_threads_end(sqlite_ledger_url):
    led = Ledger(sqlite_ledger_url)
    try:
        fid = _register(led).id

        def work(i: int) -> None:
            led.mark_in_flight(fid, i, i * 10)

        for start in range(0, 40, 8):  # more threads over time than the pool holds
            threads = [threading.Thread(target=work, args=(i,)) for i in range(start, start + 8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            del threads
            gc.collect()
        assert len(led.lanes(fid)) == 40
        assert len(led._conns) <= 2  # this thread's, plus at most one not yet collected
    finally:
        led.close()


def test_mark_in_flight_speed_sqlite(sqlite_ledger_url):
    led = Ledger(sqlite_ledger_url)
    try:
        fid = _register(led).id
        n = 3000
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            led.mark_in_flight(fid, 0, i * 100, delivered_through=(i - 1) * 100)
        single = n / (time.perf_counter() - t0)

        lanes, per_lane = 4, 750

        def lane(k: int) -> None:
            for i in range(1, per_lane + 1):
                led.mark_in_flight(fid, k, i * 100, delivered_through=(i - 1) * 100)

        threads = [threading.Thread(target=lane, args=(k,)) for k in range(lanes)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        multi = lanes * per_lane / (time.perf_counter() - t0)
        print(f"\nmark_in_flight on SQLite: {single:,.0f} ops/s (1 thread), {multi:,.0f} ops/s ({lanes} threads)")
        assert led.lanes(fid)[0] == ((per_lane - 1) * 100, per_lane * 100)
    finally:
        led.close()


# --- summaries ----------------------------------------------------------------------------------
def test_summaries(ledger):
    fid = _register(ledger).id
    started = dt.datetime(2024, 3, 15, 1, 2, 3, 456789, tzinfo=dt.timezone.utc)
    first = {
        "started_at": started,
        "finished_at": started + dt.timedelta(seconds=90),
        "status": FILE_PARTIAL,
        "lines_total": 5_000_000_000,
        "tracked": 10, "pages": 7, "downloads": 3, "bots": 1, "static": 2, "http_errors": 3,
        "http_redirects": 4, "filtered": 5, "invalid": 6, "delivered": 9, "rejected": 1,
        "seconds": 90.25, "format_name": "ncsa_extended", "compression": "gzip", "incomplete": True,
        "message": "stopped: Matomo down " + "x" * 2000,
    }
    id1 = ledger.add_summary(fid, first)
    id2 = ledger.add_summary(fid, {"status": FILE_LOADED, "delivered": 1, "incomplete": False})
    assert id2 > id1
    rows = ledger.summaries(fid)
    assert [r["id"] for r in rows] == [id1, id2]
    r = rows[0]
    for key in ("status", "lines_total", "tracked", "pages", "downloads", "bots", "static", "http_errors",
                "http_redirects", "filtered", "invalid", "delivered", "rejected", "format_name", "compression"):
        assert r[key] == first[key], key
    assert r["started_at"] == started and r["finished_at"] == started + dt.timedelta(seconds=90)
    assert r["seconds"] == pytest.approx(90.25)
    assert r["incomplete"] is True and rows[1]["incomplete"] is False
    assert r["message"].startswith("stopped: Matomo down") and len(r["message"]) == schema.MESSAGE_MAX
    assert rows[1]["lines_total"] is None
    with pytest.raises(ValueError, match="ignored"):
        ledger.add_summary(fid, {"ignored": {"bots": 1}})
    with pytest.raises(ValueError):
        ledger.add_summary(fid, {"status": "great"})
    assert len(ledger.summaries(fid)) == 2


# --- expected files -----------------------------------------------------------------------------
def test_expected_file_ranges(ledger):
    # SciELO nbr: 2 up to 2022-04-05, 3 until 2022-05-08, 2 after
    ledger.set_expected_files(7, dt.date(2020, 1, 1), dt.date(2022, 4, 5), 2)
    ledger.set_expected_files(7, dt.date(2022, 4, 6), dt.date(2022, 5, 8), 3)
    ledger.set_expected_files(7, dt.date(2022, 5, 9), None, 2)
    assert expected_files_on(ledger, 7, dt.date(2019, 12, 31)) == 1  # default
    assert expected_files_on(ledger, 7, dt.date(2020, 1, 1)) == 2
    assert expected_files_on(ledger, 7, dt.date(2022, 4, 5)) == 2
    assert expected_files_on(ledger, 7, dt.date(2022, 4, 6)) == 3
    assert expected_files_on(ledger, 7, dt.date(2022, 5, 8)) == 3
    assert expected_files_on(ledger, 7, dt.date(2030, 1, 1)) == 2
    assert expected_files_on(ledger, 8, dt.date(2022, 4, 6)) == 1  # another site

    with pytest.raises(ValueError) as err:
        ledger.set_expected_files(7, dt.date(2022, 5, 1), dt.date(2022, 5, 20), 4)
    assert "2022-05-01..2022-05-20" in str(err.value) and "2022-04-06..2022-05-08" in str(err.value)
    with pytest.raises(ValueError, match="open"):
        ledger.set_expected_files(7, dt.date(2031, 1, 1), None, 1)
    with pytest.raises(ValueError):
        ledger.set_expected_files(7, dt.date(2018, 1, 1), dt.date(2017, 1, 1), 1)  # ends before it starts

    ledger.set_expected_files(7, dt.date(2022, 4, 6), dt.date(2022, 5, 8), 4)  # same range: new count
    assert expected_files_on(ledger, 7, dt.date(2022, 4, 20)) == 4
    ledger.set_expected_files(8, dt.date(2022, 4, 6), dt.date(2022, 5, 8), 0)  # ranges are per site
    assert expected_files_on(ledger, 8, dt.date(2022, 4, 20)) == 0


# --- day status ---------------------------------------------------------------------------------
def test_day_status_transitions(ledger):
    site = 3
    ledger.set_expected_files(site, dt.date(2024, 1, 1), None, 2)
    assert ledger.day_status(site, D1) is None
    a = _register(ledger, path="/logs/a", site_id=site, day=D1).id
    b = _register(ledger, path="/logs/b", site_id=site, day=D1).id
    _register(ledger, path="/logs/bad", site_id=site, day=D1, status=FILE_INVALID)  # never counts
    _register(ledger, path="/logs/other-day", site_id=site, day=D1 + dt.timedelta(days=1), status=FILE_LOADED)

    assert ledger.recompute_day_status(site, D1) == DAY_QUEUE
    ledger.update_file(a, status=FILE_PARTIAL)
    assert ledger.recompute_day_status(site, D1) == DAY_PARTIAL
    ledger.update_file(a, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D1) == DAY_PARTIAL  # 1 of 2
    ledger.update_file(b, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D1) == DAY_LOADED
    assert ledger.day_status(site, D1) == DAY_LOADED

    # an extra file turns up: partial until it is loaded, then loaded (SciELO fell back to queue)
    c = _register(ledger, path="/logs/c", site_id=site, day=D1).id
    assert ledger.recompute_day_status(site, D1) == DAY_PARTIAL
    ledger.update_file(c, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D1) == DAY_LOADED
    (rec,) = ledger.day_statuses(site, since=D1)[:1]
    assert isinstance(rec, DayRecord)
    assert (rec.site_id, rec.day, rec.status, rec.expected, rec.found, rec.loaded) == (site, D1, DAY_LOADED, 2, 3, 3)

    # later stages are not moved backwards unless forced
    put_day_at(ledger, site, D1, DAY_PRETABLE)
    ledger.update_file(c, status=FILE_PARTIAL)
    assert ledger.recompute_day_status(site, D1) == DAY_PRETABLE
    assert ledger.day_statuses(site)[0].loaded == 2  # counts are refreshed all the same
    for stage in (DAY_CALCULATED, DAY_DONE):
        put_day_at(ledger, site, D1, stage)
        assert ledger.recompute_day_status(site, D1) == stage
    assert ledger.recompute_day_status(site, D1, force=True) == DAY_PARTIAL
    with pytest.raises(ValueError):
        put_day_at(ledger, site, D1, "finished")

    # a day with no files at all: queue (nothing found, nothing loaded)
    empty = dt.date(2024, 2, 1)
    assert ledger.recompute_day_status(site, empty) == DAY_QUEUE
    # listing: ordered by site and day, filtered by site and since
    ledger.recompute_day_status(1, D1)
    listed = [(r.site_id, r.day) for r in ledger.day_statuses()]
    assert listed == sorted(listed) and (1, D1) in listed
    assert [r.day for r in ledger.day_statuses(site, since=empty)] == [empty, D1]
    assert [r.day for r in ledger.day_statuses(site, since=D1)] == [D1]


# --- configuration errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://u:s3cret@127.0.0.1:1/x",
        "mysql+pymysql://u:s3cret@127.0.0.1:1/x",
        "nosuchdb://u:s3cret@127.0.0.1/x",
        "postgresql+psycopg2://u:s3cret@127.0.0.1:notaport/x",
        "not a url at all",
    ],
)
def test_bad_url_is_a_config_error_without_the_password(url):
    with pytest.raises(ConfigError) as err:
        Ledger(url)
    message = str(err.value)
    assert "s3cret" not in message
    assert "\n" not in message
    assert "ledger" in message
    if "127.0.0.1:1/" in url:
        assert "u:***@127.0.0.1:1/x" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_journals_never_make_a_day_loaded_and_later_stages_advance_only_in_order(ledger):
    site = 5
    ledger.set_expected_files(site, dt.date(2024, 1, 1), None, 1)
    journal = _register(ledger, path="/home/cloudwatch/web/replay.jsonl", site_id=site, day=D1,
                        status=FILE_LOADED, kind="journal")
    assert journal.kind == "journal"
    assert ledger.recompute_day_status(site, D1) == DAY_QUEUE  # the log itself has not arrived
    assert [f.path for f in ledger.files_feeding_day(site, D1)] == [journal.path]  # but it feeds the day
    log = _register(ledger, path="/logs/access.log", site_id=site, day=D1, status=FILE_LOADED)
    assert ledger.recompute_day_status(site, D1) == DAY_LOADED
    assert log.kind == "log"
    assert not ledger.advance_day(site, D1, "calculated", after=("pretable",))  # not Pretable yet
    assert ledger.advance_day(site, D1, "pretable", after=("loaded",))
    assert ledger.advance_day(site, D1, "calculated", after=("pretable",))
    assert ledger.day_status(site, D1) == "calculated"
    with pytest.raises(ValueError, match="unknown file kind"):
        _register(ledger, path="/x", site_id=site, day=D1, kind="other")


def test_one_rule_says_which_files_feed_a_day(ledger):
    """Issue #13: list_files (asset metadata's files), files_feeding_day and the day's `found` agree,
    also for a file named for one day whose content is on the next."""
    named = _register(ledger, path="/logs/access.log.2024-03-14", day=D1)
    ledger.set_file_days(named.id, {D2: 10})  # its content: all on the next day
    spill = _register(ledger, path="/logs/access.log.2024-03-15", day=D2)
    ledger.set_file_days(spill.id, {D2: 90, D3: 3})  # spills past midnight into D3
    for day in (D1, D2, D3):
        listed = [f.id for f in ledger.list_files(site_id=1, day=day)]
        feeding = [f.id for f in ledger.files_feeding_day(1, day)]
        ledger.recompute_day_status(1, day)
        (row,) = [r for r in ledger.day_statuses(1) if r.day == day]
        assert listed == feeding and row.found == len(listed), day
    assert [f.id for f in ledger.files_feeding_day(1, D1)] == [named.id]
    assert [f.id for f in ledger.files_feeding_day(1, D2)] == [named.id, spill.id]
    assert [f.id for f in ledger.files_feeding_day(1, D3)] == [spill.id]


def test_head_is_alembics_head_and_a_current_ledger_opens_without_alembic(tmp_path):
    """Issue #16: opening a ledger whose schema is current costs one SELECT, not Alembic's import
    and script scan (~100 ms of every CLI start)."""
    import subprocess
    import sys

    from sqlalchemy import create_engine

    assert migrate.HEAD == migrate.head_revision()
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    Ledger(url).close()  # creates and migrates
    code = ("import sys\nfrom analytics_ingest.ledger import Ledger\nLedger(sys.argv[1]).close()\n"
            "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))")
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # an older ledger is still brought up to date (and then Alembic is loaded, as it must be)
    engine = create_engine(url)
    migrate.downgrade(engine, "0004")
    engine.dispose()
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'alembic'" in done.stdout
    engine = create_engine(url)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD
    engine.dispose()


def test_a_new_ledger_is_created_at_head_and_migrates_like_a_migrated_one(ledger_url, tmp_path):
    """Issue #16: a database with none of the ledger's tables is created from the schema, without
    Alembic, and is then indistinguishable from one Alembic built: same tables, indexes and
    constraint names, Alembic's own version table, and it migrates down and back up."""
    import subprocess
    import sys

    code = ("import sys\nfrom analytics_ingest.ledger import Ledger\nLedger(sys.argv[1]).close()\n"
            "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))")
    done = subprocess.run([sys.executable, "-c", code, ledger_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # created without loading Alembic

    def shape(conn) -> dict:
        inspector = inspect(conn)
        return {
            table: (sorted(c["name"] for c in inspector.get_columns(table)),
                    inspector.get_pk_constraint(table)["name"] if conn.dialect.name == "postgresql" else None,
                    sorted(ix["name"] for ix in inspector.get_indexes(table)),
                    sorted(str(fk["name"]) for fk in inspector.get_foreign_keys(table)),
                    sorted(str(uq["name"]) for uq in inspector.get_unique_constraints(table)))
            for table in inspector.get_table_names() if table.startswith("ledger_")
        }

    led = Ledger(ledger_url)  # opens the created ledger: current, nothing to do
    try:
        engine = led._engine
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
            assert _schema_diffs(conn) == []
            created = shape(conn)
        migrate.downgrade(engine, "0001")  # constraint names must be what the migrations expect
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
            assert _schema_diffs(conn) == []
            assert shape(conn) == created
        led.register_file(path="/logs/a.log", site_id=1, size=10, fingerprint="f" * 64, fingerprint_len=10)
    finally:
        led.close()
    # and built by Alembic alone, the database has the same shape as the created one
    other = Ledger(ledger_url, migrate=False)
    try:
        with other._engine.begin() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                table.drop(conn)
            conn.exec_driver_sql(f"DROP TABLE {migrate.VERSION_TABLE}")
        migrate.upgrade(other._engine)
        with other._engine.connect() as conn:
            assert shape(conn) == created
    finally:
        other.close()
