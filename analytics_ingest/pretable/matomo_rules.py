"""What Matomo 4.12.3's tracker stores for one request, re-implemented so that a pretable built
from our hits equals one read from Matomo's log tables (never Matomo's code, only its rules).

Two halves, used by both sources:

* :func:`matomo_action` -- the ``log_action`` row (type, name) the tracker writes for a request
  we sent (``url`` or ``download``), and :func:`matomo_browser` -- the visit's
  ``config_browser_name`` / ``config_browser_version`` for a user agent;
* :func:`pretable_action_name` and :func:`browser_name` -- that stored form turned into the
  pretable's ``actionName`` and ``browserName``. The ``matomo_db`` source applies them to what it
  reads, the ``hits`` source to what :func:`matomo_action` / :func:`matomo_browser` computed, so
  both go through the same last step.

Matomo's rules, by file (4.12.3):

* ``core/Tracker/Request.php`` ``getParam`` -> ``Common::getRequestVar``: every string parameter
  is sanitised (``html_entity_decode`` then ``htmlspecialchars``, ENT_QUOTES);
* ``core/Tracker/PageUrl.php``: ``cleanupUrl`` (undo the sanitising, trim, drop CR/LF/NUL, cut
  at ``page_maximum_length`` = 1024 bytes, matrix URLs ``/a;b=1`` -> ``/a?b=1``),
  ``excludeQueryParametersFromUrl`` (host lower-cased, fragment dropped unless the site keeps it,
  query rebuilt by ``UrlHelper::getArrayFromQueryString`` / ``getQueryStringWithExcludedParameters``:
  names and values sanitised again, a repeated name keeps its last value, ``x[]`` collects,
  excluded names dropped), ``getQueryParametersToExclude`` (``ignore_referrer``,
  ``ignore_referer``, the site's and global excluded parameters, ``[Tracker]
  url_query_parameter_to_exclude_from_url`` and the campaign name and keyword parameters of
  ``config/global.ini.php``: :data:`EXCLUDED_QUERY_PARAMETERS`) and ``normalizeUrl`` (the
  ``http(s)://(www.)`` prefix goes to ``url_prefix``);
* ``plugins/Actions/Actions/ActionDownloadUrl.php``: a download keeps its whole URL, sanitised,
  no parameter excluded, no prefix split ("we do not normalize download URL");
* ``plugins/Actions/Actions/ActionSiteSearch.php``: with site search on (Matomo's default for a
  new site) a page URL with a keyword parameter (:data:`SITE_SEARCH_KEYWORD_PARAMETERS`, the
  global default) is a site search: ``idaction_name`` is the keyword (type 8, URL-decoded) and
  ``idaction_url`` is NULL -- the URL is not stored;
* ``plugins/DevicesDetection/Columns/BrowserName.php`` / ``BrowserVersion.php`` and
  ``core/DeviceDetector/DeviceDetectorFactory.php``: DeviceDetector (``matomo/device-detector``
  6.0.4: client parsers FeedReader, MobileApp, MediaPlayer, PIM, Browser, Library in that order;
  a bot gets no client) gives the client's short code (browsers) or name (other clients), else
  ``UNK``; the version is major.minor; ``plugins/DevicesDetection/functions.php``
  ``getBrowserName`` turns a code back into a name. The ``device_detector`` package is a Python
  port of the same YAML (a newer release, so a rare new agent may differ).

A site's own settings (site search off, other keyword parameters, more excluded parameters) are
:class:`UrlRules`, read from Matomo by :mod:`.site_rules`. Not modelled (the sources may differ
there): a site that keeps URL fragments (``keep_url_fragment``), the MarketingCampaignsReporting
plugin (it also strips ``utm_content``, ``utm_id``...), client hints, and PHP's ``parse_url`` on
malformed URLs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_to_bytes

# Matomo 4.12.3 ``config/global.ini.php`` [Tracker]: campaign_var_name, campaign_keyword_var_name,
# url_query_parameter_to_exclude_from_url; plus PageUrl::getQueryParametersToExclude's own two.
EXCLUDED_QUERY_PARAMETERS = frozenset(
    "ignore_referrer ignore_referer "
    "pk_cpn pk_campaign piwik_campaign mtm_campaign matomo_campaign utm_campaign utm_source utm_medium "
    "pk_kwd pk_keyword piwik_kwd mtm_kwd mtm_keyword matomo_kwd utm_term "
    "gclid fbclid msclkid yclid fb_xd_fragment fb_comment_id phpsessid jsessionid sessionid aspsessionid "
    "doing_wp_cron sid pk_vid".split())
# SitesManager's global default for sitesearch_keyword_parameters (no category parameters).
SITE_SEARCH_KEYWORD_PARAMETERS = ("q", "query", "s", "search", "searchword", "k", "keyword")
PAGE_MAXIMUM_LENGTH = 1024

TYPE_PAGE_URL, TYPE_DOWNLOAD, TYPE_SITE_SEARCH = 1, 3, 8
ACTION_TYPES = (TYPE_PAGE_URL, TYPE_DOWNLOAD, TYPE_SITE_SEARCH)
# actionName of a site search: Matomo keeps the keyword, not the URL (see the schema docstring)
SITE_SEARCH_PREFIX = "search:"
UNKNOWN_BROWSER = "UNK"
CACHE_LIMIT = 100_000

_URL_PREFIXES = ("http://www.", "http://", "https://www.", "https://")  # PageUrl::$urlPrefixMap
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
_SPECIAL_DECODE = re.compile(r"&(?:amp|quot|lt|gt|#0*39|#[xX]0*27);")
_SPECIALS = {"&amp;": "&", "&quot;": '"', "&lt;": "<", "&gt;": ">"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ARRAY_SUFFIX = re.compile(r"(\[|%5b)(]|%5d)$", re.IGNORECASE)
_PHP_TRIM = " \t\n\r\0\x0b"


# -- PHP string helpers ---------------------------------------------------------------------------
def _entity(m: re.Match) -> str:
    text = m.group(0)
    if text == "&apos;":  # not an HTML 4.01 entity: PHP's default doctype leaves it
        return text
    decoded = html.unescape(text)
    return text if decoded == text else decoded


def entity_decode(text: str) -> str:
    """PHP ``html_entity_decode($text, ENT_QUOTES, 'UTF-8')``: entities with their ``;`` only."""
    return _ENTITY.sub(_entity, text) if "&" in text else text


def specialchars(text: str) -> str:
    """PHP ``htmlspecialchars($text, ENT_QUOTES)``."""
    if not any(c in text for c in "&\"'<>"):
        return text
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#039;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def specialchars_decode(text: str) -> str:
    """PHP ``htmlspecialchars_decode($text, ENT_QUOTES)``."""
    if "&" not in text:
        return text
    return _SPECIAL_DECODE.sub(lambda m: _SPECIALS.get(m.group(0), "'"), text)


def sanitize(text: str) -> str:
    """``Common::sanitizeInputValue``: no CR/LF/NUL, entities decoded, special characters escaped."""
    return specialchars(entity_decode(text.replace("\n", "").replace("\r", "")).replace("\0", ""))


def _cut(text: str, limit: int = PAGE_MAXIMUM_LENGTH) -> str:
    """PHP ``substr`` on the UTF-8 bytes (a cut character is dropped, as MySQL would refuse it)."""
    if len(text) <= limit // 4:
        return text
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def cleanup_string(text: str) -> str:
    """``PageUrl::cleanupString``."""
    text = text.strip(_PHP_TRIM).replace("\n", "").replace("\r", "").replace("\0", "")
    return _cut(text)


def _php_empty(value) -> bool:
    return value is None or value is False or value == "" or value == "0" or value == []


def convert_matrix_url(url: str) -> str:
    """``PageUrl::convertMatrixUrl``: ``/a;b=1;c=2`` -> ``/a?b=1&c=2``."""
    semi = url.find(";")
    if semi < 0:
        return url
    qmark = url.find("?")
    if qmark >= 0 and qmark < semi:
        return url
    if qmark > semi:
        url = url[:qmark] + ";" + url[qmark + 1:]
    semi = url.find(";")
    return (url[:semi] + "?" + url[semi + 1:]).replace(";", "&")


def _split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme://authority, path, query, fragment) -- enough of ``parse_url`` for tracked URLs."""
    m = _SCHEME.match(url)
    start = m.end() if m else 0
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if 0 <= i < end:
            end = i
    base, rest = url[:end], url[end:]
    rest, _, fragment = rest.partition("#")
    path, _, query = rest.partition("?")
    return base, path, query, fragment


def _lower_host(base: str) -> str:
    """The scheme and host lower-cased (``cleanupHostAndHashTag``; ``parse_url`` lowers the scheme
    only in comparisons, Matomo's prefix match is case-insensitive anyway)."""
    m = _SCHEME.match(base)
    if not m:
        return base.lower()
    return base[:m.end()] + base[m.end():].lower()


def query_array(query: str) -> dict:
    """``UrlHelper::getArrayFromQueryString``: name -> value (sanitised), False without ``=``,
    a list for ``x[]``; a repeated name keeps its first position and its last value."""
    out: dict = {}
    for piece in query.lstrip("?").split("&"):
        name, eq, value = piece.partition("=")
        value = value if eq else False
        if not _php_empty(name):
            name = sanitize(name)
        if not _php_empty(value):
            value = sanitize(value)
        stripped, count = _ARRAY_SUFFIX.subn("", name)
        if stripped and count:
            if not isinstance(out.get(stripped), list):
                out[stripped] = []
            out[stripped].append(value)
        elif not _php_empty(name):
            out[name] = value
    return out


def query_without(params: dict, excluded) -> str:
    """``UrlHelper::getQueryStringWithExcludedParameters`` (plain names only)."""
    parts = []
    for name, value in params.items():
        name = name.replace("%5B", "[").replace("%5D", "]")
        if name.lower() in excluded:
            continue
        if isinstance(value, list):
            parts.extend(f"{name}[]" if v is False else f"{name}[]={v}" for v in value)
        elif value is False:
            parts.append(name)
        else:
            parts.append(f"{name}={value}")
    return "&".join(parts)


def _urldecode_valid_utf8(value: str) -> str:
    """``PageUrl::urldecodeValidUtf8``."""
    raw = unquote_to_bytes(value.replace("+", " "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return quote_plus(raw, safe="-_.")


# -- what the tracker stores ------------------------------------------------------------------------
def site_search_keyword(url: str, keyword_parameters=SITE_SEARCH_KEYWORD_PARAMETERS) -> str | None:
    """The keyword ``ActionSiteSearch::detectSiteSearch`` finds in a page URL (already cleaned up
    with :func:`cleanup_url`), as stored (sanitised), or None: not a site search."""
    _, _, query, fragment = _split_url(url)
    if _php_empty(query) and _php_empty(fragment):
        return None
    params = {k.lower(): v for k, v in query_array(f"{query}&{fragment}").items()}
    keyword = None
    for name in keyword_parameters:
        value = params.get(name.lower())
        if not _php_empty(value):
            keyword = value
            break
    if keyword is None:
        return None
    if isinstance(keyword, list):
        keyword = keyword[0]
    if keyword is False:
        return None
    keyword = _urldecode_valid_utf8(keyword).strip(_PHP_TRIM)
    if _php_empty(keyword):
        return None
    return cleanup_string(keyword) or None


def cleanup_url(url: str) -> str:
    """A ``url`` request parameter as ``PageUrl::cleanupUrl`` sees it (after ``getParam``)."""
    return convert_matrix_url(cleanup_string(specialchars_decode(sanitize(url))))


@dataclass(frozen=True)
class UrlRules:
    """A site's Matomo settings that change what the tracker stores for a URL: site search on or
    off and its keyword parameters, and the query parameters it strips. The defaults are a new
    site's on a fresh Matomo 4.12.3; :mod:`.site_rules` reads a real site's."""

    site_search: bool = True
    keyword_parameters: tuple[str, ...] = SITE_SEARCH_KEYWORD_PARAMETERS
    excluded: frozenset = EXCLUDED_QUERY_PARAMETERS
    source: str = "Matomo 4.12.3 defaults"

    def action(self, url: str, *, download: bool = False) -> tuple[int, str] | None:
        return matomo_action(url, download=download, site_search=self.site_search,
                             keyword_parameters=self.keyword_parameters, excluded=self.excluded)


DEFAULT_RULES = UrlRules()


def matomo_action(url: str, *, download: bool = False, site_search: bool = True,
                  keyword_parameters=SITE_SEARCH_KEYWORD_PARAMETERS,
                  excluded=EXCLUDED_QUERY_PARAMETERS) -> tuple[int, str] | None:
    """The ``log_action`` (type, name) Matomo stores for a tracked ``url`` (``download``: sent as
    ``download=url``); None when Matomo would store no URL action."""
    if download:
        name = cleanup_string(sanitize(url))
        return (TYPE_DOWNLOAD, name) if name else None
    cleaned = cleanup_url(url)
    if site_search:
        keyword = site_search_keyword(cleaned, keyword_parameters)
        if keyword is not None:
            return TYPE_SITE_SEARCH, keyword
    base, path, query, _fragment = _split_url(cleaned)  # the fragment goes (keep_url_fragment off)
    base = _lower_host(base)
    if not _php_empty(query):
        query = query_without(query_array(query), excluded)
    full = cleanup_string(base + path + (f"?{query}" if query else ""))
    if not full:
        return None
    lowered = full[:12].lower()
    for prefix in _URL_PREFIXES:
        if lowered.startswith(prefix):
            return TYPE_PAGE_URL, full[len(prefix):]
    return TYPE_PAGE_URL, full


# -- stored form -> pretable ------------------------------------------------------------------------
def _no_scheme_www(url: str) -> str:
    m = _SCHEME.match(url)
    if m:
        url = url[m.end():]
    return url[4:] if url[:4].lower() == "www." else url


def pretable_action_name(action_type: int, name: str | None) -> str | None:
    """The pretable's ``actionName`` for a stored ``log_action`` (type, name): the URL without
    scheme and leading ``www.``, host in lower case, Matomo's HTML escapes undone; a site search
    is :data:`SITE_SEARCH_PREFIX` + keyword."""
    if name is None or name == "":
        return None
    if action_type == TYPE_SITE_SEARCH:
        return SITE_SEARCH_PREFIX + specialchars_decode(name)
    if action_type == TYPE_DOWNLOAD:
        url = _no_scheme_www(specialchars_decode(name))
    else:
        # a page URL's path is stored as sent; only its rebuilt query carries escapes
        path, sep, query = name.partition("?")
        url = _no_scheme_www(path + sep + specialchars_decode(query))
    host_end = len(url)
    for sep in "/?#":
        i = url.find(sep)
        if 0 <= i < host_end:
            host_end = i
    return url[:host_end].lower() + url[host_end:]


_BROWSERS: dict | None = None


def _browser_table() -> dict:
    global _BROWSERS
    if _BROWSERS is None:
        from device_detector.parser.client.browser import AVAILABLE_BROWSERS

        _BROWSERS = dict(AVAILABLE_BROWSERS)
    return _BROWSERS


def browser_name(label: str | None) -> str | None:
    """``getBrowserName`` of ``plugins/DevicesDetection/functions.php`` for a stored
    ``config_browser_name``: a code's name, a longer label as is, None for unknown."""
    if not label:
        return None
    table = _browser_table()
    name = table.get(label[:2])
    if name:
        return name[:1].upper() + name[1:]
    if len(label) > 2 and UNKNOWN_BROWSER not in label:
        return label
    return None


def _truncate_version(version: str) -> str:
    """DeviceDetector's default version truncation (major.minor), cut at VARCHAR(20)."""
    if version.count(".") > 1:
        version = ".".join(version.split(".")[:2])
    return version[:20]


class MatomoBrowsers:
    """user agent -> (config_browser_name, config_browser_version) as Matomo stores them, cached
    per distinct agent (a parse is a few milliseconds; a day repeats its agents)."""

    def __init__(self) -> None:
        from device_detector.parser.client import PIM, Browser, FeedReader, Library, MediaPlayer, MobileApp

        from ..matomo.device_bots import DeviceBots

        self._parsers = (FeedReader, MobileApp, MediaPlayer, PIM, Browser, Library)
        self._is_bot = DeviceBots()
        self._codes = {v.lower(): k for k, v in _browser_table().items()}
        self._cache: dict[str, tuple[str, str]] = {}

    def is_bot(self, agent: str) -> bool:
        return self._is_bot(agent)

    def __call__(self, agent: str) -> tuple[str, str]:
        found = self._cache.get(agent)
        if found is None:
            found = self._parse(agent)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[agent] = found
        return found

    def _parse(self, agent: str) -> tuple[str, str]:
        # DeviceDetector::parse: nothing for an agent without a letter, nor for a bot
        if not agent or not re.search("[a-z]", agent, re.IGNORECASE) or self._is_bot(agent):
            return UNKNOWN_BROWSER, ""
        for parser in self._parsers:
            data = parser(agent, None, os_details={}).parse().ua_data
            if data:
                name = data.get("name") or ""
                code = data.get("short_name") or (self._codes.get(name.lower(), "") if parser.__name__ == "Browser"
                                                  else "")
                label = (code or name)[:40] or UNKNOWN_BROWSER
                return label, _truncate_version(str(data.get("version") or ""))
        return UNKNOWN_BROWSER, ""


def pretable_browser(label: str | None, version: str | None) -> tuple[str | None, str | None]:
    """(browserName, browserVersion) of the pretable for a stored browser label and version."""
    name = browser_name(label)
    return name, (version or None) if name is not None else None
