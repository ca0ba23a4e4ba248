#!/usr/bin/env python3
"""Deterministic generator of realistic Apache/nginx "combined" access logs, with a manifest.

    python bench/gen_logs.py --lines 200000 --seed 42 --date 2024-03-14 [--tz +0100] [--days 1]
                             [--gzip] -o FILE

or, from Python, ``generate(path, lines, seed=42, date="2024-03-14", tz="+0100", gzip=False)``,
which returns the manifest it also writes to ``FILE.manifest.json``.

Every line lands in exactly one category under ``import_logs.py``'s default rules (checks in
alphabetical order: download, hostname, http_error, http_redirect, path, static, user_agent),
so the manifest states what a correct importer must count:

============== ======== ==================================================================
category       share    how the line is built
============== ======== ==================================================================
pages          ~70 %    200 (or 304) from a browser UA, path without a static/download
                        extension (``/``, ``/blog/...``, ``.html``, ``.php``, query strings)
static         ~10 %    200, browser UA, ``.css .js .png .gif .jpg .svg .ico .woff2``
                        (``robots.txt`` is not used: its ``txt`` is also a download
                        extension, so import_logs would count it in *both* counters)
downloads      ~5 %     200, browser UA, ``.pdf .zip .mp4 .csv .docx .epub``
bots           ~8 %     200 on page paths, UA holding one of import_logs' bot substrings
http_redirects ~2 %     301/302 on page paths, browser UA
http_errors    ~3 %     404/403/500 on page paths, browser UA
invalid        ~2 %     matches no log format: truncated before the status, junk text,
                        binary-looking text (all valid UTF-8, never line 1, no ``"``/``[``
                        in junk, never starting with ``#``, never blank)
============== ======== ==================================================================

``tracked`` = pages + downloads; ``days`` maps each UTC day to its tracked hits. Times increase
through ``days`` UTC days starting at ``date`` 00:00 UTC with a day/night curve, and are written
in local time at offset ``tz`` (so with +0100 the first line reads 01:00). Clients come from a
pool of visitors (``visitors``, default 3,000; ~5 % IPv6) that each keep one IP, UA and user
id; bots come from their own pool. Paths mix plain ASCII, raw UTF-8 and percent-encoded UTF-8,
with query strings; referrers are empty, internal, search engines or other sites.

The same arguments give byte-identical output (gzip too: no name or mtime in its header).
"""

from __future__ import annotations

import argparse
import calendar
import gzip as _gzip
import ipaddress
import json
import math
import os
import random
import sys
import time
from urllib.parse import quote

CATEGORIES = (
    ("pages", 0.70),
    ("static", 0.10),
    ("downloads", 0.05),
    ("bots", 0.08),
    ("http_redirects", 0.02),
    ("http_errors", 0.03),
    ("invalid", 0.02),
)
SITE = "https://example.org"
CHUNK = 20_000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# import_logs.py's default rules, as far as this generator needs them (see the reference, §1).
BOT_SUBSTRINGS = (
    "adsbot-google", "ask jeeves", "baidubot", "bot-", "bot/", "ccooter/", "crawl", "curl",
    "echoping", "exabot", "feed", "googlebot", "ia_archiver", "java/", "libwww",
    "mediapartners-google", "msnbot", "netcraftsurvey", "panopta", "pingdom.com_bot_", "robot",
    "spider", "surveybot", "twiceler", "voilabot", "yahoo", "yandex", "zabbix",
    "googlestackdrivermonitoring",
)
STATIC_EXTS = ("css", "js", "png", "gif", "jpg", "svg", "ico", "woff2")
DOWNLOAD_EXTS = ("pdf", "zip", "mp4", "csv", "docx", "epub")
PAGE_EXTS = ("html", "php")  # neither static nor download for import_logs

BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.3; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.90 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 OPR/107.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; moto g84 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.212 Safari/537.36",
)
BROWSER_WEIGHTS = (20, 12, 8, 3, 7, 2, 2, 8, 14, 3, 9, 4, 5, 1, 1, 1)

BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/122.0.6261.94 Safari/537.36",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; DuckDuckBot/1.1; +http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Screaming Frog SEO Spider/19.4",
    "curl/8.4.0",
    "libwww-perl/6.72",
    "Java/17.0.10",
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 3 subscribers)",
)

WORDS = (
    "analytics", "report", "annual", "pricing", "team", "careers", "history", "support",
    "release", "notes", "guide", "install", "privacy", "security", "roadmap", "community",
    "events", "press", "partners", "garden", "recipes", "travel", "music", "science", "open",
    "data", "climate", "energy", "health", "school", "library", "museum", "archive", "map",
    "über", "café", "straße", "niño", "naïve", "crème-brûlée", "smörgåsbord", "año",
    "東京", "北京", "москва", "καλημέρα", "שלום", "مرحبا", "ürün", "żółw",
)
SEARCH_TERMS = (
    "matomo log import", "café paris", "über uns", "open data portal", "climat 2024",
    "straßenbahn fahrplan", "東京 ホテル", "annual report pdf", "privacy policy", "niño",
)
SEARCH_ENGINES = (
    "https://www.google.com/", "https://www.google.de/", "https://www.bing.com/search?q={q}",
    "https://duckduckgo.com/", "https://www.ecosia.org/search?q={q}", "https://search.brave.com/search?q={q}",
)
OTHER_REFERRERS = (
    "https://t.co/{s}", "https://news.ycombinator.com/item?id={n}", "https://www.reddit.com/r/opendata/comments/{s}/",
    "https://de.wikipedia.org/wiki/Caf%C3%A9", "https://github.com/", "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.org%2F",
    "https://www.linkedin.com/", "android-app://com.google.android.gm/",
)
JUNK_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_/\\|<>()=+*&^%$@~'`"
    "éèàüößñçåøæ漢字ひらがな€£¥—–…\ufffd😀🚀"
)
# binary-looking but valid UTF-8 and never a line break for str.splitlines (no \x0b\x0c\x1c-\x1e\x85)
BINARY_ALPHABET = (
    "".join(map(chr, range(0x01, 0x09))) + "".join(map(chr, range(0x0E, 0x1C))) + "\x1f\x7f"
    + "".join(map(chr, range(0xA0, 0x100)))
)
OTHER_FORMAT_LINES = (
    "{mon} {d} {hms} web01 nginx: worker process {n} exited on signal 9",
    "ts={iso} level=warn msg=upstream_timeout upstream=10.0.0.{b}:8080 request_id={hex}",
    "{iso},{ip},GET,/index.html,200,{n}",
    "PROXY TCP4 {ip} 10.0.0.1 {n} 443",
    "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03{hex}",
)


def _tz_seconds(tz: str) -> int:
    text = tz.replace(":", "")
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        raise ValueError(f"tz must look like +0100 or -0530, got {tz!r}")
    sign = 1 if text[0] == "+" else -1
    return sign * (int(text[1:3]) * 3600 + int(text[3:5]) * 60)


def _is_bot(ua: str) -> bool:
    low = ua.lower()
    return any(s in low for s in BOT_SUBSTRINGS)


def _ext(path: str) -> str:
    return path.partition("?")[0].rsplit(".")[-1].lower()


def _pct(text: str) -> str:
    return quote(text, safe="-_.~")


def _slug(rng: random.Random, utf8: str) -> str:
    """A slug of 1-3 words; ``utf8`` is 'ascii', 'raw' or 'pct'."""
    words = [rng.choice(WORDS[:34]) for _ in range(rng.randint(1, 3))]
    if utf8 != "ascii":
        words[rng.randrange(len(words))] = rng.choice(WORDS[34:])
    slug = "-".join(words)
    return _pct(slug) if utf8 == "pct" else slug


def _utf8_mode(rng: random.Random) -> str:
    r = rng.random()
    return "ascii" if r < 0.75 else ("raw" if r < 0.87 else "pct")


def _page_path(rng: random.Random) -> str:
    r = rng.random()
    m = _utf8_mode(rng)
    if r < 0.04:
        return rng.choice(("/", "/about", "/contact", "/impressum", "/blog/", "/feed", "/search"))
    if r < 0.30:
        return f"/blog/{rng.randint(2015, 2024)}/{rng.randint(1, 12):02d}/{_slug(rng, m)}"
    if r < 0.45:
        return f"/products/{rng.randint(1, 5000)}" + (
            f"?color={rng.choice(('red', 'blue', 'gr%C3%BCn', 'noir'))}&size={rng.choice('SMLX')}"
            if rng.random() < 0.4 else "")
    if r < 0.55:
        term = rng.choice(SEARCH_TERMS)
        return f"/search?q={quote(term, safe='').replace('%20', '+')}&page={rng.randint(1, 5)}"
    if r < 0.65:
        return f"/category/{_slug(rng, m)}?page={rng.randint(1, 20)}"
    if r < 0.75:
        return f"/{rng.choice(('de', 'fr', 'es', 'ja'))}/{_slug(rng, m)}"
    if r < 0.82:
        return f"/news/{_slug(rng, m)}.html"
    if r < 0.88:
        return f"/index.php?id={rng.randint(1, 999)}&lang={rng.choice(('de', 'en'))}"
    if r < 0.94:
        return f"/docs/v{rng.randint(1, 4)}.{rng.randint(0, 9)}/{_slug(rng, 'ascii')}"
    return f"/wiki/{_slug(rng, m)}?section={rng.choice(('intro', 'top'))}"


def _static_path(rng: random.Random) -> str:
    ext = rng.choice(STATIC_EXTS)
    h = "%08x" % rng.getrandbits(32)
    if ext == "css":
        return f"/static/css/{rng.choice(('main', 'print', 'theme', 'vendor'))}.{h}.css"
    if ext == "js":
        return f"/assets/js/{rng.choice(('app', 'vendor', 'matomo', 'search'))}.js?v={rng.randint(1, 40)}"
    if ext == "woff2":
        return f"/fonts/{rng.choice(('inter', 'roboto', 'source-sans'))}-{rng.choice(('400', '700'))}.woff2"
    if ext == "ico":
        return "/favicon.ico"
    return f"/images/{_slug(rng, _utf8_mode(rng))}-{rng.randint(1, 400)}.{ext}"


def _download_path(rng: random.Random) -> str:
    ext = rng.choice(DOWNLOAD_EXTS)
    slug = _slug(rng, _utf8_mode(rng))
    if ext == "pdf":
        return f"/files/{slug}-{rng.randint(2010, 2024)}.pdf"
    if ext == "zip":
        return f"/downloads/{slug}-{rng.randint(1, 9)}.{rng.randint(0, 20)}.zip"
    if ext == "mp4":
        return f"/media/{slug}.mp4"
    if ext == "csv":
        return f"/data/{slug}.csv?date=2024-0{rng.randint(1, 3)}-{rng.randint(10, 28)}"
    if ext == "docx":
        return f"/docs/{slug}.docx"
    return f"/books/{slug}.epub"


def _ipv4(rng: random.Random) -> str:
    first = rng.choice((23, 31, 37, 46, 62, 77, 78, 79, 81, 82, 84, 85, 86, 87, 88, 89, 90, 91, 93,
                        94, 95, 109, 141, 151, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _ipv6(rng: random.Random) -> str:
    prefix = rng.choice((0x2A01, 0x2003, 0x2A02, 0x2600, 0x2001, 0x2A00, 0x2C0F))
    value = (prefix << 112) | (rng.getrandbits(32) << 80) | rng.getrandbits(64)
    if rng.random() < 0.5:  # many clients have an ::1-ish interface id
        value = (value >> 64 << 64) | rng.randint(1, 255)
    return ipaddress.IPv6Address(value).compressed


def _referrer(rng: random.Random, pages: list[str]) -> str:
    r = rng.random()
    if r < 0.45:
        return "-"
    if r < 0.75:
        return SITE + pages[int(rng.random() * len(pages))]
    if r < 0.90:
        q = quote(rng.choice(SEARCH_TERMS), safe="").replace("%20", "+")
        return rng.choice(SEARCH_ENGINES).format(q=q)
    return rng.choice(OTHER_REFERRERS).format(s="%06x" % rng.getrandbits(24), n=rng.randint(1, 9_999_999))


def _second_offsets(lines: int, days: int):
    """Non-decreasing second offsets (from the first UTC midnight) for ``lines`` lines, denser by
    day (a simple diurnal curve, in UTC; quiet around 03:00, busy around 15:00)."""
    minutes = days * 1440
    weights = [1.15 + math.sin((m % 1440) / 1440 * 2 * math.pi - 2.36) for m in range(minutes)]
    total = sum(weights)
    cum = 0.0
    emitted = 0
    for m in range(minutes):
        cum += weights[m]
        upto = lines if m == minutes - 1 else min(lines, round(cum / total * lines))
        count = upto - emitted
        base = m * 60
        for j in range(count):
            yield base + (j * 60) // count
        emitted = upto


def _check_pools(pages, statics, downloads) -> None:
    for p in pages:
        ext = _ext(p)
        assert ext in PAGE_EXTS or "/" in ext, p
        assert '"' not in p and " " not in p, p
    for p in statics:
        assert _ext(p) in STATIC_EXTS, p
    for p in downloads:
        assert _ext(p) in DOWNLOAD_EXTS, p
    for ua in BROWSER_UAS:
        assert not _is_bot(ua), ua
    for ua in BOT_UAS:
        assert _is_bot(ua), ua


def generate(path: str, lines: int, seed: int = 42, date: str = "2024-03-14", tz: str = "+0100",
             gzip: bool = False, *, days: int = 1, visitors: int = 3000) -> dict:
    """Write ``lines`` log lines to ``path`` (gzip-compressed when ``gzip``) and the manifest to
    ``path + ".manifest.json"``; return the manifest."""
    if lines < 0 or days < 1 or visitors < 1:
        raise ValueError("lines >= 0, days >= 1, visitors >= 1")
    rng = random.Random(seed)
    offset = _tz_seconds(tz)
    tz_text = tz.replace(":", "")
    start = calendar.timegm(time.strptime(date, "%Y-%m-%d"))  # first UTC midnight

    pages = [_page_path(rng) for _ in range(3000)]
    statics = [_static_path(rng) for _ in range(400)]
    downloads = [_download_path(rng) for _ in range(400)]
    _check_pools(pages, statics, downloads)
    error_paths = pages[:200] + ["/wp-login.php", "/.env", "/admin/config.php", "/old-page", "/xmlrpc.php"]

    # visitors: (prefix "ip - user [", suffix '" UA') and a heavy-tailed activity weight
    vis_prefix, vis_ua, vis_v6, cum_w = [], [], [], []
    acc = 0.0
    ua_cum = []
    a = 0
    for w in BROWSER_WEIGHTS:
        a += w
        ua_cum.append(a)
    for _ in range(visitors):
        v6 = rng.random() < 0.05
        ip = _ipv6(rng) if v6 else _ipv4(rng)
        user = rng.choice(("alice", "bob", "chloé", "dmitri", "eve")) if rng.random() < 0.02 else "-"
        ua = rng.choices(BROWSER_UAS, cum_weights=ua_cum)[0]
        vis_prefix.append(f"{ip} - {user} [")
        vis_ua.append(f'" "{ua}"\n')
        vis_v6.append(v6)
        acc += min(rng.paretovariate(1.6), 40.0)
        cum_w.append(acc)
    bot_prefix, bot_ua, bot_v6 = [], [], []
    for i in range(60):
        v6 = rng.random() < 0.05
        ip = _ipv6(rng) if v6 else _ipv4(rng)
        bot_prefix.append(f"{ip} - - [")
        bot_ua.append(f'" "{BOT_UAS[i % len(BOT_UAS)]}"\n')
        bot_v6.append(v6)

    names = [c for c, _ in CATEGORIES]
    cat_cum = []
    a = 0.0
    for _, share in CATEGORIES:
        a += share
        cat_cum.append(a)
    counts = dict.fromkeys(names, 0)
    day_counts: dict[str, int] = {}
    ipv6_lines = 0

    raw = open(path, "wb")
    out = _gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) if gzip else raw
    size = 0
    try:
        times = _second_offsets(lines, days)
        rnd = rng.random
        randint = rng.randint
        choices = rng.choices
        n_pages, n_static, n_dl, n_err = len(pages), len(statics), len(downloads), len(error_paths)
        last_sec = None
        stamp = ""
        day_key = ""
        done = 0
        while done < lines:
            k = min(CHUNK, lines - done)
            cats = choices(names, cum_weights=cat_cum, k=k)
            who = choices(range(visitors), cum_weights=cum_w, k=k)
            buf = []
            app = buf.append
            for i in range(k):
                sec = start + next(times)
                if sec != last_sec:
                    last_sec = sec
                    t = time.gmtime(sec + offset)
                    stamp = (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                             f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tz_text}] \"")
                    day_key = time.strftime("%Y-%m-%d", time.gmtime(sec))
                cat = cats[i] if done + i else "pages"  # line 1 is always a page (autodetection)
                counts[cat] += 1
                if cat == "bots":
                    b = int(rnd() * 60)
                    ipv6_lines += bot_v6[b]
                    app(f'{bot_prefix[b]}{stamp}GET {pages[int(rnd() * n_pages)]} HTTP/1.1" 200 '
                        f'{randint(3000, 90000)} "-{bot_ua[b]}')
                    continue
                if cat == "invalid":
                    app(_malformed(rng, vis_prefix[who[i]], stamp, pages) + "\n")
                    continue
                v = who[i]
                ipv6_lines += vis_v6[v]
                r = rnd()
                ref = _referrer(rng, pages)
                if cat == "pages":
                    p = pages[int(rnd() * n_pages)]
                    method = "GET" if r < 0.95 else ("POST" if r < 0.98 else "HEAD")
                    if rnd() < 0.08:
                        status, length = "304", "-"
                    else:
                        status, length = "200", randint(2000, 120000)
                    day_counts[day_key] = day_counts.get(day_key, 0) + 1
                elif cat == "static":
                    p, method, status, length = statics[int(r * n_static)], "GET", "200", randint(200, 400000)
                    ref = SITE + pages[int(rnd() * n_pages)]
                elif cat == "downloads":
                    p, method, status, length = downloads[int(r * n_dl)], "GET", "200", randint(10_000, 90_000_000)
                    day_counts[day_key] = day_counts.get(day_key, 0) + 1
                elif cat == "http_redirects":
                    p, method, length = pages[int(r * n_pages)], "GET", randint(150, 600)
                    status = "301" if rnd() < 0.6 else "302"
                else:  # http_errors
                    p, method, length = error_paths[int(r * n_err)], "GET", randint(150, 9000)
                    x = rnd()
                    status = "404" if x < 0.7 else ("403" if x < 0.85 else "500")
                proto = "HTTP/1.1" if rnd() < 0.7 else "HTTP/2.0"
                app(f'{vis_prefix[v]}{stamp}{method} {p} {proto}" {status} {length} "{ref}{vis_ua[v]}')
            data = "".join(buf).encode("utf-8")
            size += len(data)
            out.write(data)
            done += k
    finally:
        if out is not raw:
            out.close()
        raw.close()

    manifest = {
        "lines": lines,
        "pages": counts["pages"],
        "static": counts["static"],
        "downloads": counts["downloads"],
        "bots": counts["bots"],
        "http_redirects": counts["http_redirects"],
        "http_errors": counts["http_errors"],
        "invalid": counts["invalid"],
        "tracked": counts["pages"] + counts["downloads"],
        "days": dict(sorted(day_counts.items())),
        "ipv6_lines": ipv6_lines,
        "seed": seed,
        "date": date,
        "tz": tz_text,
        "span_days": days,
        "visitors": visitors,
        "gzip": bool(gzip),
        "uncompressed_bytes": size,
        "file": os.path.basename(path),
    }
    with open(path + ".manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return manifest


def _malformed(rng: random.Random, prefix: str, stamp: str, pages: list[str]) -> str:
    """A line no log format matches (see the module docstring)."""
    r = rng.random()
    if r < 0.4:  # cut before the request's closing quote: no status, no referrer, no UA
        head = f"{prefix}{stamp}GET {pages[int(rng.random() * len(pages))]}"
        return head[: rng.randint(8, len(head))].rstrip() or "truncated"
    if r < 0.7:
        text = "".join(rng.choice(JUNK_ALPHABET) for _ in range(rng.randint(5, 120)))
    elif r < 0.85:
        text = "".join(rng.choice(BINARY_ALPHABET) for _ in range(rng.randint(8, 80)))
    else:
        text = rng.choice(OTHER_FORMAT_LINES).format(
            mon="Mar", d=rng.randint(1, 28), hms="10:%02d:%02d" % (rng.randint(0, 59), rng.randint(0, 59)),
            n=rng.randint(100, 99999), iso="2024-03-14T10:00:00Z", b=rng.randint(2, 9),
            hex="%012x" % rng.getrandbits(48), ip=_ipv4(rng))
    text = text.strip()
    if not text or text[0] == "#":
        text = "x" + text
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--date", default="2024-03-14", help="first UTC day, YYYY-MM-DD")
    ap.add_argument("--tz", default="+0100", help="offset the lines are written in, e.g. +0100")
    ap.add_argument("--days", type=int, default=1, help="number of UTC days the lines span")
    ap.add_argument("--visitors", type=int, default=3000)
    ap.add_argument("--gzip", action="store_true", help="gzip-compress (the name is not changed)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    manifest = generate(args.output, args.lines, seed=args.seed, date=args.date, tz=args.tz,
                        gzip=args.gzip, days=args.days, visitors=args.visitors)
    took = time.perf_counter() - started
    print(json.dumps(manifest, ensure_ascii=False))
    print(f"wrote {args.lines} lines in {took:.2f} s ({args.lines / max(took, 1e-9):,.0f} lines/s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
