"""Decide what Matomo's ``import_logs.py`` would do with a parsed hit, with the same defaults.

import_logs runs its checks in alphabetical order of their method names and the first one that
rejects a hit decides where it is counted: download, (hostname), http_error, http_redirect,
path, static, user_agent; the ``--include-host``/``--exclude-host`` filter comes after all of
them. We keep that order, quirks included:

* a 404 on ``style.css`` is an HTTP error, not static;
* a bot fetching ``robots.txt`` is static, not a bot;
* ``.xml`` is both a download and a static extension: static wins unless static is enabled;
* with a replaced ``--download-extensions`` list, a known download extension outside it is
  rejected before anything else (counted here as FILTERED).

Everything that depends only on the path, the status or the user agent is cached, so the
per-hit cost is a few dict lookups.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..hits import Hit
from ..vocabulary import BOTS, DOWNLOADS, FILTERED, HTTP_ERRORS, HTTP_REDIRECTS, PAGES, STATIC

# import_logs' defaults (same members; our own layout).
STATIC_EXTENSIONS = frozenset(
    "gif jpg jpeg png bmp ico svg svgz webp ttf otf eot woff woff2 css js xml class swf".split()
)
STATIC_FILES = frozenset({"robots.txt"})
DOWNLOAD_EXTENSIONS = frozenset(
    (
        "7z aac arc arj asf asx avi azw3 apk bin bz2 csv deb dmg doc docx epub exe flac flv gz gzip "
        "hqx ibooks jar json md5 mobi mov movie mp2 mp3 mp4 mpeg mpg msi msp odb odf odg odp ods odt "
        "ogg ogv pdf phps ppt pptx qt qtm ra ram rar rpm rtf sea sig sit tar tbz tgz torrent txt "
        "wav webm wma wmv wpd xls xlsx xml xsd z zip"
    ).split()
)
# Lower-case substrings of user agents treated as bots.
BOT_SUBSTRINGS = (
    "adsbot-google", "ask jeeves", "baidubot", "bot-", "bot/", "ccooter/", "crawl", "curl",
    "echoping", "exabot", "feed", "googlebot", "googlestackdrivermonitoring", "ia_archiver",
    "java/", "libwww", "mediapartners-google", "msnbot", "netcraftsurvey", "panopta",
    "pingdom.com_bot_", "robot", "spider", "surveybot", "twiceler", "voilabot", "yahoo", "yandex",
    "zabbix",
)  # fmt: skip

CACHE_LIMIT = 200_000

# Path outcomes (what the path alone decides, in check order).
_P_PAGE, _P_DOWNLOAD, _P_STATIC, _P_FILTERED, _P_REJECTED_DOWNLOAD = range(5)
_PATH_RESULT = {_P_PAGE: PAGES, _P_DOWNLOAD: DOWNLOADS, _P_STATIC: STATIC, _P_FILTERED: FILTERED}


@dataclass(frozen=True)
class ClassifyOptions:
    enable_static: bool = False  # static tracked as downloads (import_logs' --enable-static)
    enable_bots: bool = False  # bots tracked (request gets bots=1)
    enable_http_errors: bool = False  # 4xx/5xx tracked as pages
    enable_http_redirects: bool = False  # 3xx except 304 tracked as pages
    exclude_paths: tuple[str, ...] = ()  # fnmatch globs on the path without query string -> FILTERED
    include_paths: tuple[str, ...] = ()  # when set, paths matching none -> FILTERED
    include_hosts: tuple[str, ...] = ()  # when set, hits whose host is not in it -> FILTERED
    exclude_hosts: tuple[str, ...] = ()
    useragent_exclude: tuple[str, ...] = ()  # extra bot substrings
    download_extensions: tuple[str, ...] | None = None  # replaces the list (None or empty: default list)
    add_download_extensions: tuple[str, ...] = ()


def _globs(patterns: tuple[str, ...]):
    """One compiled matcher for a set of fnmatch globs (case-sensitive, like fnmatch on POSIX)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.DOTALL).match


def _extensions(values) -> frozenset[str]:
    return frozenset(v.strip().lstrip(".").lower() for v in values if v.strip().lstrip("."))


class Classifier:
    """Maps a :class:`Hit` to one category of :mod:`analytics_ingest.vocabulary`."""

    def __init__(self, options: ClassifyOptions = ClassifyOptions()) -> None:
        self.options = options
        replaced = _extensions(options.download_extensions or ())
        added = _extensions(options.add_download_extensions)
        # Like import_logs, an empty replacement list means "not given".
        self._replaced_downloads = bool(replaced)
        downloads = (replaced or DOWNLOAD_EXTENSIONS) | added
        self._downloads = downloads
        self._exclude = _globs(options.exclude_paths)
        self._include = _globs(options.include_paths)
        self._include_hosts = frozenset(h.strip().lower() for h in options.include_hosts if h.strip())
        self._exclude_hosts = frozenset(h.strip().lower() for h in options.exclude_hosts if h.strip())
        self._filter_hosts = bool(self._include_hosts or self._exclude_hosts)
        extra = tuple(s.lower() for s in options.useragent_exclude if s)
        self._bot_search = re.compile("|".join(re.escape(s) for s in BOT_SUBSTRINGS + extra)).search
        self._paths: dict[str, int] = {}
        self._agents: dict[str, bool] = {}
        self._statuses: dict[int, str | None] = {}
        # decide(path, status, user_agent, host) -> category: classify() on the fields themselves,
        # so that a parser can skip building the Hit of an ignored line. A closure: its caches
        # and settings are fast locals.
        self.decide = self._make_decide()

    def classify(self, hit: Hit) -> str:
        """One of PAGES, DOWNLOADS, BOTS, STATIC, HTTP_ERRORS, HTTP_REDIRECTS, FILTERED."""
        return self.decide(hit.path, hit.status, hit.user_agent, hit.host)

    # -- the per-hit decision ------------------------------------------------------------------
    def _make_decide(self):
        paths_get = self._paths.get
        path_code = self._path_code
        statuses_get = self._statuses.get
        status_result = self._status_result
        agents_get = self._agents.get
        agent_is_bot = self._agent_is_bot
        enable_bots = self.options.enable_bots
        filter_hosts = self._filter_hosts
        host_filtered = self._host_filtered
        rejected, static_or_filtered = _P_REJECTED_DOWNLOAD, _P_STATIC
        result_of = _PATH_RESULT
        missing = object()

        def decide(path: str, status: int, agent: str, host: str) -> str:
            code = paths_get(path, missing)
            if code is missing:
                cut = path.find("?")
                if cut < 0 or (code := paths_get(path[:cut], missing)) is missing:
                    code = path_code(path)
            if code == rejected:
                return FILTERED
            verdict = statuses_get(status, missing)
            if verdict is missing:
                verdict = status_result(status)
            if verdict is not None:
                return verdict
            if code >= static_or_filtered:
                return result_of[code]
            if not enable_bots:
                bot = agents_get(agent)
                if bot is None:
                    bot = agent_is_bot(agent)
                if bot:
                    return BOTS
            if filter_hosts and host_filtered(host, path):
                return FILTERED
            return result_of[code]

        return decide

    def is_bot(self, hit: Hit) -> bool:
        """Whether the user agent matches a bot substring (cached per user agent)."""
        return self.agent_is_bot(hit.user_agent)

    def agent_is_bot(self, agent: str) -> bool:
        """:meth:`is_bot` of a user agent string."""
        bot = self._agents.get(agent)
        if bot is None:
            bot = self._agent_is_bot(agent)
        return bot

    def filter_reason(self, hit: Hit) -> str | None:
        """For a FILTERED hit: which filter took it (``download_extension``, ``exclude_path``,
        ``include_path``, ``exclude_host``, ``include_host``); None if it is not filtered."""
        stem = hit.path.split("?", 1)[0]
        if self._path_code(stem) == _P_REJECTED_DOWNLOAD:
            return "download_extension"
        if self._exclude is not None and self._exclude(stem):
            return "exclude_path"
        if self._include is not None and not self._include(stem):
            return "include_path"
        host = self._host_of(hit.host, hit.path)
        if host:
            if host in self._exclude_hosts:
                return "exclude_host"
            if self._include_hosts and host not in self._include_hosts:
                return "include_host"
        return None

    # -- cache fillers -------------------------------------------------------------------------
    def _path_code(self, path: str) -> int:
        """What the path alone decides; cached by the path without its query string (query
        strings vary endlessly; a cached key never contains "?")."""
        cut = path.find("?")
        stem = path if cut < 0 else path[:cut]
        # import_logs: "extension" is whatever follows the last dot of the path, lower-cased.
        ext = stem[stem.rfind(".") + 1 :].lower()
        if ext not in self._downloads and self._replaced_downloads and ext in DOWNLOAD_EXTENSIONS:
            code = _P_REJECTED_DOWNLOAD
        elif self._exclude is not None and self._exclude(stem):
            code = _P_FILTERED
        elif self._include is not None and not self._include(stem):
            code = _P_FILTERED
        elif ext in STATIC_EXTENSIONS or stem.rsplit("/", 1)[-1] in STATIC_FILES:
            code = _P_DOWNLOAD if self.options.enable_static else _P_STATIC
        elif ext in self._downloads:
            code = _P_DOWNLOAD
        else:
            code = _P_PAGE
        paths = self._paths
        if len(paths) >= CACHE_LIMIT:
            paths.clear()
        paths[stem] = code
        return code

    def _status_result(self, status: int) -> str | None:
        first = str(status)[:1]
        verdict = None
        if first in ("4", "5"):
            verdict = None if self.options.enable_http_errors else HTTP_ERRORS
        elif first == "3" and status != 304:
            verdict = None if self.options.enable_http_redirects else HTTP_REDIRECTS
        if len(self._statuses) < 10_000:
            self._statuses[status] = verdict
        return verdict

    def _agent_is_bot(self, agent: str) -> bool:
        bot = self._bot_search(agent.lower()) is not None
        agents = self._agents
        if len(agents) >= CACHE_LIMIT:
            agents.clear()
        agents[agent] = bot
        return bot

    @staticmethod
    def _host_of(host: str, path: str) -> str:
        if not host and path[:1] not in ("/", ""):
            # No host field: import_logs takes it from an absolute request target, if any.
            try:
                host = urlsplit(path).hostname or ""
            except ValueError:
                host = ""
        return host.lower()

    def _host_filtered(self, host: str, path: str) -> bool:
        host = self._host_of(host, path)
        if not host:
            return False
        if host in self._exclude_hosts:
            return True
        return bool(self._include_hosts) and host not in self._include_hosts
