"""A worker's NCSA lines (common, combined and their host-prefixed forms) in one loop.

The general path of a job is three layers of calls per line: the parser's stepper builds a
:class:`~analytics_ingest.hits.Hit`, the counter's loop counts it, the job's callback renders it.
For the formats of nearly every web log this loop does the same work with the matched fields
as locals: no Hit, and per tracked line one call to classify and one to the job's ``track``,
which renders. It takes 6-9% off a worker's CPU on a 200,000-line log (issue #16).

Only lines the parser's fast expression matches take this way; every other line (escaped
quotes, host names for addresses, blank and over-long lines) goes through the general stepper
and counter, so the counts, samples and requests are those of the general path, which a test
checks line for line.
"""

from __future__ import annotations

from ..hits import Hit
from ..logs.base import BAD_DATE
from ..logs.timeparse import CACHE_LIMIT, DATE_OUT_OF_RANGE, apache_cdt_by_minute, cdt_bounds
from ..vocabulary import DOWNLOADS, FILTERED, PAGES


def run_lines(lines: list[str], first_line_no: int, *, fast_match, counter, step, track) -> None:
    """Count ``lines`` (numbered from ``first_line_no``) into ``counter.stats`` like
    ``counter.run(step, lines)`` with ``counter.on_tracked`` does, calling
    ``track(line_no, host, path, ip, cdt, agent, referrer, user, length, status, category, is_bot)`` for
    each tracked line instead of building a Hit for the callback (``length``: the size as the
    log's digits, or None).

    ``fast_match`` is the parser's fast expression (:attr:`NcsaParser.fast_match`); ``step`` its
    general stepper, bound to ``counter``'s classifier."""
    stats = counter.stats
    counts = stats.counts
    classifier = counter.classifier
    decide = classifier.decide
    agent_is_bot = classifier.agent_is_bot if counter.enable_bots else None
    add_cdt = counter.cdts.append
    dates: dict[str, str] = {}
    date_of = dates.get
    codes: dict[str, int] = {}  # "200" -> 200: three digits, at most 1,000 entries
    code_of = codes.get
    cdt_of = apache_cdt_by_minute()
    earliest, latest = cdt_bounds()
    pages, downloads = PAGES, DOWNLOADS
    n_pages = n_downloads = 0
    others: dict[str, int] = {}  # ignored categories, folded into counts at the end
    line_no = first_line_no - 1
    try:
        for line in lines:
            line_no += 1
            m = fast_match(line)
            if m is None:
                counter.line_no = line_no - 1
                counter.run(step, (line,))  # the general path counts it, whatever it is
                continue
            host, ip, user, stamp, _method, path, status, length, referrer, agent = m.groups()
            cdt = date_of(stamp)
            if cdt is None:
                cdt = cdt_of(stamp)
                reason = BAD_DATE if cdt is None else DATE_OUT_OF_RANGE if not earliest <= cdt <= latest else None
                if reason is not None:
                    stats.lines_total += 1
                    counter.invalid(line_no, reason, line)
                    continue
                if len(dates) >= CACHE_LIMIT:
                    dates.clear()
                dates[stamp] = cdt
            code = code_of(status)
            if code is None:
                code = codes[status] = int(status)
            if host:
                host = host.lower().strip(".")
            if agent == "-":
                agent = ""
            category = decide(path, code, agent, host)
            if category is pages:
                n_pages += 1
            elif category is downloads:
                n_downloads += 1
            elif category is FILTERED:
                stats.lines_total += 1
                counts[FILTERED] += 1
                hit = Hit(line_no, ip, cdt, "", path, code, None, host, "", agent)
                counter.count_filtered(classifier.filter_reason(hit) or "filtered")
                continue
            else:
                others[category] = others.get(category, 0) + 1
                continue
            add_cdt(cdt)
            # The size as the digits the request sends (no int() and back). What is not such
            # digits goes through int() as in the general path: 0 is left out, leading zeros are
            # dropped, and a size too long for int() (4,300 digits) is no size.
            if length == "-":
                length = None
            elif length[0] == "0" or len(length) > 18:
                try:
                    length = int(length) or None
                except ValueError:
                    length = None
            track(line_no, host, path, ip, cdt, agent, "" if referrer == "-" else referrer,
                  "" if user == "-" else user, length, code, category,
                  agent_is_bot(agent) if agent_is_bot is not None else False)
    finally:
        counts[pages] += n_pages
        counts[downloads] += n_downloads
        stats.lines_total += n_pages + n_downloads + sum(others.values())
        for category, n in others.items():
            counts[category] += n
        counter.line_no = line_no
