"""The parsed form of one log line, shared by parsers, the classifier and the Matomo sink."""

from __future__ import annotations


class Hit:
    """One successfully parsed request.

    ``__slots__`` keeps it small and fast to build: a million of these are created per second
    of import, and none is kept longer than its batch.

    Fields
    ------
    line_no:      1-based line number in the (decompressed) file; with the file's identity it
                  names the hit for exactly-once delivery.
    ip:           client IP as text (IPv4 or IPv6), never empty.
    cdt:          UTC time as ``"YYYY-MM-DD HH:MM:SS"`` (Matomo's ``cdt``), offsets applied.
    method:       HTTP method or ``""``.
    path:         request target *including* the query string (``/a/b?x=1``), as in the log
                  (percent-encoding kept; UTF-8 text).
    status:       HTTP status code as int (0 when the format has none).
    length:       response bytes as int, or ``None`` for ``-``/absent.
    host:         virtual host or ``""``.
    referrer:     ``""`` when absent or ``-``.
    user_agent:   ``""`` when absent or ``-``.
    user_id:      ``""`` when absent or ``-``.
    generation_ms: server time in ms (int) or ``None``.
    extra:        ``None`` or a small dict of format-specific values (e.g. CloudFront RTMP
                  event fields ``event_category``/``event_action``/``event_name``).
    """

    __slots__ = (
        "line_no",
        "ip",
        "cdt",
        "method",
        "path",
        "status",
        "length",
        "host",
        "referrer",
        "user_agent",
        "user_id",
        "generation_ms",
        "extra",
    )

    def __init__(
        self,
        line_no: int,
        ip: str,
        cdt: str,
        method: str,
        path: str,
        status: int,
        length: int | None = None,
        host: str = "",
        referrer: str = "",
        user_agent: str = "",
        user_id: str = "",
        generation_ms: int | None = None,
        extra: dict | None = None,
    ) -> None:
        self.line_no = line_no
        self.ip = ip
        self.cdt = cdt
        self.method = method
        self.path = path
        self.status = status
        self.length = length
        self.host = host
        self.referrer = referrer
        self.user_agent = user_agent
        self.user_id = user_id
        self.generation_ms = generation_ms
        self.extra = extra

    @property
    def day(self) -> str:
        """UTC day ``YYYY-MM-DD`` of the hit."""
        return self.cdt[:10]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"Hit({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hit):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)


def is_event(hit: Hit) -> bool:
    """A Matomo *event* rather than a page view: a hit carrying an event category (CloudFront RTMP
    lines) or a replayed tracker request with ``e_c``."""
    extra = hit.extra
    if not extra:
        return False
    if extra.get("event_category"):
        return True
    replayed = extra.get("tracking_params")
    return isinstance(replayed, dict) and bool(replayed.get("e_c"))
