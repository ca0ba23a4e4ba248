"""Which delivered hits Matomo's tracker drops although its bulk answer counts them as tracked.

Matomo 4.12.3 (``core/Tracker/VisitExcluded.php``, ``isExcluded``) refuses a request, in this order:

1. ``isNonHumanBot`` -- unless the request carries ``bots=1``: DeviceDetector recognises the user
   agent as a bot, or the IP is in the built-in bot ranges (``getBotIpRanges``: Google, Live/Bing/MSN,
   Yahoo and one IP, :data:`BOT_IP_RANGES`);
2. no ``rec`` parameter (never: every request we send has ``rec=1``);
3. ``[Tracker] exclude_requests`` of ``config.ini.php`` (not readable through the API);
4. the ignore cookie (never in bulk tracking);
5. the site's ``excluded_ips`` plus the global list (``SitesManager.getExcludedIpsGlobal``): IPs,
   CIDR ranges or ``*`` wildcards;
6. the global plus the site's ``excluded_user_agents``: a case-insensitive substring of the agent,
   or a PHP regex (``/bot/i``) -- and, as Matomo's loop does, the first entry that is a valid regex
   decides (entries after it are not tried);
7. referrer spam (``enable_spam_filter``, Matomo's bundled list), ``exclude_unknown_urls``, prefetch
   headers.

``core/Tracker.php`` counts an excluded request as logged ("an excluded visit is considered
'successfully logged'"), so the ledger records it as delivered. :class:`MatomoExclusions` counts
what can be shown from the site's settings and the hit itself: reasons 1 (IP ranges only), 5 and 6.
DeviceDetector's bot list is Matomo's own; the archive check treats hits whose agent is on
COUNTER's robot or machine list as a tolerance instead. ``excluded_parameters`` only strips URL
parameters and excludes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .api import MatomoApiError

BOT_IP = "bot_ip_range"
EXCLUDED_IP = "excluded_ip"
EXCLUDED_USER_AGENT = "excluded_user_agent"
REASONS = (BOT_IP, EXCLUDED_IP, EXCLUDED_USER_AGENT)

# VisitExcluded::getBotIpRanges() of Matomo 4.12.3: Google (getGoogleBotIpRanges), Live/Bing/MSN,
# Yahoo, and "Chinese bot hammering websites". Matomo masks the host bits (72.30.198.0/20 is
# 72.30.192.0 - 72.30.207.255), as strict=False does.
BOT_IP_RANGES = tuple(ipaddress.ip_network(r, strict=False) for r in (
    "216.239.32.0/19", "64.233.160.0/19", "66.249.80.0/20", "72.14.192.0/18", "209.85.128.0/17",
    "66.102.0.0/20", "74.125.0.0/16", "64.18.0.0/20", "207.126.144.0/20", "173.194.0.0/16",
    "64.4.0.0/18", "65.52.0.0/14", "157.54.0.0/15", "157.56.0.0/14", "157.60.0.0/16", "207.46.0.0/16",
    "207.68.128.0/18", "207.68.192.0/20", "131.253.26.0/20", "131.253.24.0/20",
    "72.30.198.0/20", "72.30.196.0/20", "98.137.207.0/20",
    "1.202.218.8/32",
))

_BAD_WILDCARD = re.compile(r"[^.:]\*|\*.*([^.:*]|::)")  # IPUtils::sanitizeIpRange
_CACHE_LIMIT = 200_000


def ip_range(text: str):
    """An entry of an excluded-IPs list as a network, as Matomo's ``IPUtils::sanitizeIpRange`` reads
    it (``1.2.3.4``, ``1.2.3.0/24``, ``1.2.*.*``, ``2001:db8::/32``), or None when Matomo ignores it."""
    text = text.strip()
    if not text:
        return None
    bits = None
    if "*" in text:
        if _BAD_WILDCARD.search(text):
            return None
        wildcards = text.count("*")
        text = text.replace("*", "0")
    elif "/" in text:
        text, _, raw_bits = text.partition("/")
        if not raw_bits.strip().isdigit():
            return None
        bits = int(raw_bits)
        wildcards = 0
    else:
        wildcards = 0
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    width = address.max_prefixlen
    if bits is None:
        bits = width - (8 if width == 32 else 16) * wildcards
    if not 0 <= bits <= width:
        return None
    return ipaddress.ip_network(f"{address}/{bits}", strict=False)


_PHP_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0, "D": 0}
_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def php_regex(entry: str):
    """The compiled form of ``entry`` when PHP's ``preg_match`` would take it as a regex
    (``/bot/i``, ``#^curl#``), else None. Modifiers Python lacks (``U``, ``X``, ``A``...) and PCRE
    syntax Python does not compile give None: such an entry is then only a substring, an
    approximation this check reports as such by never counting more than Matomo could."""
    entry = entry.lstrip()
    if len(entry) < 2 or entry[0].isalnum() or entry[0] == "\\":
        return None
    opening = entry[0]
    closing = _BRACKETS.get(opening, opening)
    depth, i = 0, 1
    while i < len(entry):
        char = entry[i]
        if char == "\\":
            i += 2
            continue
        if char == closing and depth == 0:
            break
        if closing != opening:
            depth += (char == opening) - (char == closing)
        i += 1
    else:
        return None  # no ending delimiter
    flags = 0
    for modifier in entry[i + 1:]:
        if modifier not in _PHP_FLAGS:
            return None
        flags |= _PHP_FLAGS[modifier]
    try:
        return re.compile(entry[1:i], flags)
    except re.error:
        return None


@dataclass
class MatomoExclusions:
    """The exclusion rules of one site that can be evaluated on a delivered hit."""

    excluded_ips: tuple = ()
    excluded_user_agents: tuple[str, ...] = ()  # global first, then the site's (Matomo's order)
    unread: list[str] = field(default_factory=list)  # settings that could not be read, one phrase each
    _ip_cache: dict = field(default_factory=dict, repr=False)
    _agent_cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, api, idsite: int) -> MatomoExclusions:
        """The site's and the global excluded IPs and user agents (``SitesManager``). The global
        lists need an admin token: when they cannot be read, :attr:`unread` says so."""
        unread: list[str] = []
        try:
            site = api.call("SitesManager.getSiteFromId", idSite=int(idsite))
        except MatomoApiError as exc:
            site = {}
            unread.append(f"site {idsite}'s excluded IPs and user agents ({exc})")
        site = site if isinstance(site, dict) else {}
        global_ips = read_global(api, "SitesManager.getExcludedIpsGlobal", "global excluded IPs", unread)
        global_agents = read_global(api, "SitesManager.getExcludedUserAgentsGlobal", "global excluded user agents",
                                    unread)
        ips = [ip_range(p) for p in setting_entries(site.get("excluded_ips")) + setting_entries(global_ips)]
        agents = tuple(dict.fromkeys(setting_entries(global_agents)
                                     + setting_entries(site.get("excluded_user_agents"))))
        return cls(tuple(n for n in ips if n is not None), agents, unread)

    def reason(self, ip: str, user_agent: str, bots: bool) -> str | None:
        """Why Matomo drops a hit from ``ip`` with ``user_agent`` (``bots``: sent with ``bots=1``),
        as one of :data:`REASONS`, or None when none of the counted rules applies."""
        in_bot_range, in_excluded_ips = self.ip_kind(ip)
        return self.reason_of(in_bot_range, in_excluded_ips, self.agent_excluded(user_agent), bots)

    @staticmethod
    def reason_of(in_bot_range: bool, in_excluded_ips: bool, agent_excluded: bool, bots: bool) -> str | None:
        """Matomo's order of the rules, for an address's and an agent's findings."""
        if in_bot_range and not bots:  # isNonHumanBot comes first
            return BOT_IP
        if in_excluded_ips:
            return EXCLUDED_IP
        if agent_excluded:
            return EXCLUDED_USER_AGENT
        return None

    def ip_kind(self, ip: str) -> tuple[bool, bool]:
        """(in a bot range, in the excluded IPs) for ``ip``, cached."""
        where = self._ip_cache.get(ip)
        if where is None:
            where = self._ip_kind(ip)
            if len(self._ip_cache) >= _CACHE_LIMIT:
                self._ip_cache.clear()
            self._ip_cache[ip] = where
        return where

    def _ip_kind(self, text: str) -> tuple[bool, bool]:
        """(in a bot range, in the excluded IPs); an IPv4 address never matches an IPv6 range, as
        Matomo compares binary addresses of the same length only."""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False, False
        return (any(address in n for n in BOT_IP_RANGES if n.version == address.version),
                any(address in n for n in self.excluded_ips if n.version == address.version))

    def agent_excluded(self, agent: str) -> bool:
        """Whether the excluded user agents take ``agent``, cached."""
        if not self.excluded_user_agents:
            return False
        found = self._agent_cache.get(agent)
        if found is None:
            found = False
            lowered = agent.lower()
            for entry in self.excluded_user_agents:
                if entry.lower() in lowered:  # stripos
                    found = True
                    break
                regex = php_regex(entry)
                if regex is not None:  # Matomo returns the first valid regex's answer
                    found = regex.search(agent) is not None
                    break
            if len(self._agent_cache) >= _CACHE_LIMIT:
                self._agent_cache.clear()
            self._agent_cache[agent] = found
        return found


def setting_entries(value) -> list[str]:
    """A comma-separated Matomo setting (or a list of them) as its non-blank entries. ``false`` is
    an option never set: Matomo 4.12.3's ``getExcludedIpsGlobal`` answers ``{"value": false}`` on a
    fresh install (``Option::get``), which is no entry, not the text "False"."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).split(",") if p.strip()]


def read_global(api, method: str, label: str, unread: list[str]):
    try:
        answer = api.call(method)
    except MatomoApiError as exc:
        unread.append(f"the {label} ({exc})")
        return None
    return answer.get("value") if isinstance(answer, dict) else answer


__all__ = ["BOT_IP", "BOT_IP_RANGES", "EXCLUDED_IP", "EXCLUDED_USER_AGENT", "REASONS", "MatomoExclusions",
           "ip_range", "php_regex", "read_global", "setting_entries"]
