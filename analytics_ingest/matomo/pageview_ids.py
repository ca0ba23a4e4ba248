"""Deterministic per-hit ``pv_id`` values.

Matomo stores a tracking request's ``pv_id`` in ``log_link_visit_action.idpageview`` and returns
it as ``idpageview`` from ``Live.getLastVisitsDetails``. Giving every hit an id derived from its
file and line number lets a rerun ask Matomo which hits of an interrupted batch it already has.

The id is ``(offset + line_no * STEP) mod 62**6`` written in base 62. ``STEP`` is coprime with
``62**6`` (= 2**6 * 31**6), so the map from line number to id is a bijection: two lines of one
file never share an id (up to 56.8 billion lines). ``offset`` comes from the file's identity, so
different files get unrelated sequences.
"""

from __future__ import annotations

import hashlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SPACE = 62**6
STEP = 7_919_000_005  # odd and not a multiple of 31: coprime with 62**6 (checked in tests)
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # 3844 two-character digits


def offset_for(identity: str) -> int:
    """The per-file offset, from a stable identity string (fingerprint at first import)."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") % SPACE


class PageviewIds:
    """Callable ``line_no -> pv_id`` for one file; :attr:`of` is the same as a plain function."""

    __slots__ = ("offset", "of")

    def __init__(self, identity: str) -> None:
        self.offset = offset_for(identity)
        self.of = _ids_from(self.offset)

    def __call__(self, line_no: int) -> str:
        return self.of(line_no)


def _ids_from(offset: int):
    # A closure: the renderer calls it once per hit, and calling an instance (__call__) costs
    # more than the arithmetic's own share.
    pairs = _PAIRS

    def of(line_no: int) -> str:
        hi, rest = divmod((offset + line_no * STEP) % SPACE, 3844 * 3844)
        mid, lo = divmod(rest, 3844)
        return pairs[hi] + pairs[mid] + pairs[lo]

    return of
