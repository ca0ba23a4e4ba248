"""Build Matomo tracking requests from parsed hits.

Parameters follow Matomo's ``import_logs.py`` for the same line so that Matomo shows the same
numbers (idsite, rec, apiv, url, urlref, cip, ua, cdt in UTC, dp, uid, download, bw_bytes,
pf_srv, bots, action_name for tracked errors/redirects), plus a deterministic ``pv_id``.
``import_logs.py``'s ``cvar`` (HTTP-code) is not sent: custom variables left Matomo core in 4.0.

Requests are rendered straight to JSON text: this runs for every tracked hit, and formatting a
template with C-level string escaping is several times faster than building a dict and calling
``json.dumps`` on it.

Replayed tracker requests (``Hit.extra["tracking_params"]``, from the ``matomo_replay`` format)
take another, rarer path: the original tracker parameters overlaid on a small base, as
``import_logs.py --replay-tracking`` does (see :meth:`RequestBuilder._render_replay`).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _q
from urllib.parse import quote, urlsplit

from ..errors import InputError
from ..hits import Hit
from ..vocabulary import DOWNLOADS
from .pageview_ids import PageviewIds

MAX_URL_PATH = 1024  # import_logs.py cuts path and referrer to 1,024 characters
_CACHED_VALUES = 4096  # user agents (and referrers) whose JSON is kept, per builder
_CACHED_VALUE_MAX = 512  # characters; longer ones are escaped every time

# Parameters of a replayed tracker request that the engine sets, whatever the original said:
# idsite is the import's site (checked, never switched); token_auth of the original request is
# never forwarded; pv_id makes exactly-once work; cip and cdt must equal the hit's ip and cdt,
# which the day gate and the settling look-up use (and without the original's token Matomo
# ignored them anyway: the log's ip and date are what it saw).
_ENGINE_PARAMS = frozenset({"idsite", "token_auth", "pv_id", "cip", "cdt"})


class RequestBuilder:
    """Renders one hit as the JSON text of one bulk-tracking request."""

    def __init__(self, idsite: int, main_url: str, pv_ids: PageviewIds, *, enable_bots: bool = False) -> None:
        parts = urlsplit(main_url or "http://localhost")
        self.scheme = parts.scheme or "http"
        self.default_host = parts.netloc or "localhost"
        self._pv_id = pv_ids.of if pv_ids is not None else None  # line_no -> pv_id (a plain function)
        self.idsite = int(idsite)
        # Constant part first, hoisted out of the per-hit path.
        self.prefix = '{"idsite":%d,"rec":1,"apiv":1,"dp":1,"url":' % int(idsite)
        self._host_prefix: dict[str, str] = {}
        # The JSON of the user agent and referrer parameters, per value: a log repeats a few
        # hundred agents and referrers, and escaping a 150-character agent is most of a render.
        self._agent_json: dict[str, str] = {}
        self._referrer_json: dict[str, str] = {}
        # import_logs.py --enable-bots sends bots=1 with every request, so that Matomo's own
        # bot detection (DeviceDetector) does not drop bots our substring list missed.
        self.enable_bots = enable_bots

    def _base(self, host: str) -> str:
        base = self._host_prefix.get(host)
        if base is None:
            base = f"{self.scheme}://{host or self.default_host}"
            if len(self._host_prefix) < 10_000:
                self._host_prefix[host] = base
        return base

    @staticmethod
    def _remember(cache: dict[str, str], key: str, text: str) -> str:
        # Bounded in entries and in their size (an agent may be 64 KiB long): a few MB at most,
        # whatever the log.
        if len(key) <= _CACHED_VALUE_MAX:
            if len(cache) >= _CACHED_VALUES:
                cache.clear()
            cache[key] = text
        return text

    def url_of(self, host: str, path: str) -> str:
        """The ``url`` (or ``download``) parameter sent for a hit on ``host`` and ``path``; the
        pretable reads it back this way."""
        return self._base(host) + path[:MAX_URL_PATH]

    def render(self, hit: Hit, category: str, is_bot: bool) -> tuple[str, str]:
        """Return ``(pv_id, request_json)`` for a tracked hit."""
        extra = hit.extra
        if extra and extra.get("tracking_params") is not None:
            pv_id = self._pv_id(hit.line_no)
            return pv_id, self._render_replay(hit, extra["tracking_params"], pv_id, is_bot)
        return self.render_fields(hit.line_no, hit.host, hit.path, hit.ip, hit.cdt, hit.user_agent, hit.referrer,
                                  hit.user_id, hit.length, hit.generation_ms, hit.status, category, is_bot, extra)

    def render_fields(self, line_no: int, host: str, path: str, ip: str, cdt: str, agent: str, referrer: str,
                      user: str, length: int | None, generation_ms: int | None, status: int, category: str,
                      is_bot: bool, extra: dict | None = None) -> tuple[str, str]:
        """:meth:`render` of a hit given as its fields (``""``/None for absent ones, as in
        :class:`Hit`): the workers' fused loop renders lines without building a Hit."""
        base = self._host_prefix.get(host)  # url_of(host, path), without its two calls
        url = (base or self._base(host)) + path[:MAX_URL_PATH]
        pv_id = self._pv_id(line_no)
        # The parts every request has in one f-string; agent and referrer JSON from their caches.
        ua = ref = tail = ""
        if agent:
            ua = self._agent_json.get(agent)
            if ua is None:
                ua = self._remember(self._agent_json, agent, ',"ua":' + _q(agent))
        if referrer:
            ref = self._referrer_json.get(referrer)
            if ref is None:
                ref = self._remember(self._referrer_json, referrer, ',"urlref":' + _q(referrer[:MAX_URL_PATH]))
        if user:
            tail = ',"uid":' + _q(user)
        if length:  # import_logs.py leaves out 0 and "-" alike
            tail += f',"bw_bytes":{length}'
        if generation_ms:
            tail += f',"pf_srv":{generation_ms}'
        if category == DOWNLOADS:
            tail += ',"download":' + _q(url)
        elif status >= 300 and status != 304:
            # Only reached when --enable-http-errors/--enable-http-redirects let it through:
            # import_logs.py names such page views after the status, URL and referrer.
            name = f"{status}/URL = {quote(url, safe='')}/From = {quote(referrer, safe='')}"
            tail += ',"action_name":' + _q(name)
        if is_bot or self.enable_bots:
            tail += ',"bots":1'
        if extra:
            for key, param in (("event_category", "e_c"), ("event_action", "e_a"), ("event_name", "e_n")):
                value = extra.get(key)
                if value:
                    tail += f',"{param}":{_q(str(value))}'
        return pv_id, f'{self.prefix}{_q(url)},"cip":{_q(ip)},"cdt":"{cdt}","pv_id":"{pv_id}"{ua}{ref}{tail}}}'

    def _render_replay(self, hit: Hit, original: dict, pv_id: str, is_bot: bool) -> str:
        """A replayed tracker request: base ``rec``, ``apiv``, ``cip`` (log ip), ``cdt`` (log
        date, UTC), ``ua`` (log user agent), then the original parameters, which win except for
        :data:`_ENGINE_PARAMS`."""
        site = str(original.get("idsite", "")).strip()
        if site != str(self.idsite):
            # Never send a hit to another site than the import's. replay_day drops such lines
            # before they reach a journal; this guards hand-made journals.
            raise InputError(
                f"line {hit.line_no} is a tracker request for idsite={site[:20]!r}, not site {self.idsite}; "
                "replay it into its own site"
            )
        request: dict = {"idsite": self.idsite, "rec": 1, "apiv": 1, "cip": hit.ip, "cdt": hit.cdt}
        if hit.user_agent:
            request["ua"] = hit.user_agent
        if is_bot or self.enable_bots:
            request["bots"] = 1
        for key, value in original.items():
            if key not in _ENGINE_PARAMS:
                request[key] = value
        request["pv_id"] = pv_id
        return json.dumps(request, separators=(",", ":"))
