"""The log reader: compression by magic bytes, streaming lines, damaged and odd input."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import sys
import tracemalloc
import zlib

import pytest

from analytics_ingest.errors import InputError
from analytics_ingest.logs import MAX_LINE_BYTES, TOO_LONG, file_fingerprint, open_log, prefix_fingerprint


def read_all(path) -> tuple[list[str], object]:
    with open_log(path) as source:
        lines = [line for chunk in source.chunks() for line in chunk]
    return lines, source


def numbered(n: int) -> bytes:
    return b"".join(b'1.2.3.%d - - [10/Oct/2024:13:55:36 +0000] "GET /p/%d HTTP/1.1" 200 5\n' % (i % 250, i) for i in range(n))


@pytest.mark.parametrize(
    ("name", "compress", "kind"),
    [
        ("access.log", lambda b: b, "none"),
        ("access.log.gz", gzip.compress, "gzip"),
        ("access.log.gz.1", gzip.compress, "gzip"),  # rotated: the name does not say gzip
        ("access.log.1", bz2.compress, "bz2"),
        ("access.log.xz", lzma.compress, "xz"),
        ("x.gz", lambda b: b, "none"),  # named .gz, but plain text
    ],
)
def test_compression_is_detected_by_content_not_name(tmp_path, name, compress, kind):
    data = numbered(3000)
    path = tmp_path / name
    path.write_bytes(compress(data))
    lines, source = read_all(path)
    assert source.compression == kind
    assert lines == data.decode().split("\n")[:-1]
    assert source.incomplete is False and source.incomplete_reason is None


def test_chunks_are_lists_of_lines_in_order_without_newlines(tmp_path):
    data = numbered(20000)  # several read blocks
    path = tmp_path / "a.log"
    path.write_bytes(data)
    with open_log(path) as source:
        chunks = list(source.chunks())
    assert len(chunks) > 1
    assert all(isinstance(c, list) for c in chunks)
    joined = [line for c in chunks for line in c]
    assert joined == data.decode().split("\n")[:-1]
    assert not any("\n" in line for line in joined)


def test_multi_member_gzip_is_read_whole(tmp_path):
    path = tmp_path / "cat.gz"
    path.write_bytes(gzip.compress(b"a\nb\n") + gzip.compress(b"c\n") + b"\x00" * 8)
    lines, source = read_all(path)
    assert lines == ["a", "b", "c"]
    assert not source.incomplete


def test_stdin_dash_reads_gzip_from_stdin_buffer(monkeypatch):
    fake = io.TextIOWrapper(io.BytesIO(gzip.compress(b"one\ntwo\n")))
    monkeypatch.setattr(sys, "stdin", fake)
    with open_log("-") as source:
        assert source.name == "-"
        assert source.compression == "gzip"
        assert [line for c in source.chunks() for line in c] == ["one", "two"]


@pytest.mark.parametrize(("compress", "kind"), [(gzip.compress, "gzip"), (lzma.compress, "xz"), (bz2.compress, "bz2")])
def test_truncated_stream_yields_lines_before_the_cut_and_flags_it(tmp_path, compress, kind):
    data = numbered(40000)
    blob = compress(data)
    path = tmp_path / "cut.log"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    lines, source = read_all(path)  # must not raise
    expected = data.decode().split("\n")[:-1]
    assert 0 < len(lines) < len(expected)
    assert lines == expected[: len(lines)]  # only whole lines, in order, no fragment
    assert source.incomplete is True
    assert kind in source.incomplete_reason and "truncated" in source.incomplete_reason
    assert "\n" not in source.incomplete_reason


def test_corrupt_gzip_is_flagged_not_raised(tmp_path):
    blob = bytearray(gzip.compress(numbered(5000)))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(blob))
    lines, source = read_all(path)
    assert source.incomplete is True
    assert source.incomplete_reason


def test_garbage_after_gzip_member_is_flagged(tmp_path):
    path = tmp_path / "tail.gz"
    path.write_bytes(gzip.compress(b"a\n") + b"plain text appended\n")
    lines, source = read_all(path)
    assert lines == ["a"]
    assert source.incomplete is True


@pytest.mark.parametrize("content", [b"", gzip.compress(b""), bz2.compress(b""), lzma.compress(b"")])
def test_empty_inputs_yield_nothing(tmp_path, content):
    path = tmp_path / "empty.log.gz"
    path.write_bytes(content)
    lines, source = read_all(path)
    assert lines == []
    assert source.incomplete is False


def test_crlf_and_last_line_without_newline(tmp_path):
    path = tmp_path / "crlf.log"
    path.write_bytes(b"a\r\nb\r\n\r\nc\rd\r\nlast")
    lines, _ = read_all(path)
    assert lines == ["a", "b", "", "c\rd", "last"]


def test_invalid_utf8_is_replaced_never_raised(tmp_path):
    path = tmp_path / "bytes.log"
    path.write_bytes(b"caf\xe9\n\xff\xfe\x00z\ncaf\xc3\xa9\n")
    lines, _ = read_all(path)
    assert lines == ["caf\ufffd", "\ufffd\ufffd\x00z", "café"]


def test_over_long_line_becomes_too_long_and_reading_goes_on(tmp_path):
    path = tmp_path / "long.log"
    path.write_bytes(b"first\n" + b"x" * (2 * 1024 * 1024) + b"\nafter\n" + b"y" * (MAX_LINE_BYTES + 1) + b"\nend")
    lines, _ = read_all(path)
    assert lines[0] == "first" and lines[2] == "after" and lines[4] == "end"
    assert lines[1] is TOO_LONG and lines[3] is TOO_LONG
    assert len(lines) == 5


def test_line_of_exactly_the_limit_is_kept(tmp_path):
    path = tmp_path / "edge.log"
    path.write_bytes(b"z" * MAX_LINE_BYTES + b"\n" + "é".encode() * (MAX_LINE_BYTES // 2 + 1) + b"\n")
    lines, _ = read_all(path)
    assert lines[0] == "z" * MAX_LINE_BYTES
    assert lines[1] is TOO_LONG  # measured in bytes, not characters


def _repeated_gzip(member_content: bytes, times: int) -> bytes:
    member = gzip.compress(member_content, compresslevel=1)
    return member * times


def test_memory_stays_small_on_200mb_of_lines(tmp_path):
    line = b"2001:db8::1 - - [10/Oct/2024:13:55:36 +0000] " + b"a" * 60000 + b"\n"
    block = line * 16  # ~1 MB per gzip member
    path = tmp_path / "big.gz"
    path.write_bytes(_repeated_gzip(block, 200))  # ~200 MB decompressed
    tracemalloc.start()
    try:
        count = 0
        with open_log(path) as source:
            for chunk in source.chunks():
                count += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 16 * 200
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


def test_huge_single_line_is_skipped_in_constant_memory(tmp_path):
    path = tmp_path / "oneline.gz"
    path.write_bytes(_repeated_gzip(b"q" * (1024 * 1024), 128) + gzip.compress(b"\nnext\n"))  # a 128 MB line
    tracemalloc.start()
    try:
        lines, _ = read_all(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 2 and lines[0] is TOO_LONG and lines[1] == "next"
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


def test_decompression_bomb_block_is_bounded(tmp_path):
    # A small gzip member that inflates a thousandfold must still come out in small blocks.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    blob = compressor.compress((b"x" * 1023 + b"\n") * (64 * 1024)) + compressor.flush()
    assert len(blob) < 1024 * 1024
    path = tmp_path / "bomb.gz"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with open_log(path) as source:
            total = 0
            for chunk in source.chunks():
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * 1024
    assert peak < 8 * 1024 * 1024  # not the 64 MB inflated stream


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as err:
        open_log(tmp_path / "nope.log")
    message = str(err.value)
    assert "cannot read" in message and "nope.log" in message and "check the path" in message
    assert "\n" not in message


def test_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        open_log(tmp_path)


def test_fingerprints_cover_raw_bytes(tmp_path):
    raw = gzip.compress(numbered(10000))
    path = tmp_path / "f.gz"
    path.write_bytes(raw)
    digest, covered = file_fingerprint(path)
    assert covered == min(len(raw), 65536)
    assert digest == hashlib.sha256(raw[:covered]).hexdigest()
    assert prefix_fingerprint(path, 100) == hashlib.sha256(raw[:100]).hexdigest()
    small = tmp_path / "s.log"
    small.write_bytes(b"abc")
    assert file_fingerprint(small, 10) == (hashlib.sha256(b"abc").hexdigest(), 3)
