"""URL → COUNTER item: an ordered list of regex rules read from YAML.

A rules file looks like this (the bundled ``scielo_items.yaml`` and ``demo_items.yaml`` are
commented examples)::

    requests: [full_text]            # content types that are Requests (full content)
    rules:                           # tried in order; the first whose pattern matches wins
      - name: article_pdf            # optional label (unique), shown in error messages
        pattern: '/pdf/(?P<title>\\w+)/(?P<item>[^?#]+\\.pdf)'
        content_type: full_text      # literal defaults, used when the pattern has no such
        format: pdf                  #   named group or the group did not take part in the match
        title: null
        case: keep                   # keep | upper | lower: applied to item and title

Semantics:

* ``pattern`` is matched with :func:`re.search` against the pretable's ``actionName`` (the URL
  without scheme, e.g. ``www.scielo.br/scielo.php?script=sci_arttext&pid=…``). Inline flags such
  as ``(?i)`` may be used.
* The named group ``item`` is required; ``title``, ``format`` and ``content_type`` are optional
  groups. A group that matched a non-empty text wins over the literal of the same name.
* Every matched hit is an Investigation (COUNTER R5.1 §3.3.3, "Investigations and Requests of
  Items and Titles": any activity attributable to an item is an Investigation, Requests
  included); a hit is also a Request when its content type is listed in ``requests``.
* Each rule must be able to give a content type (a literal or a ``content_type`` group). A hit
  whose content type still comes out empty is counted as an Investigation only.

Every mistake is one line naming the file and the key, e.g.
``items.yaml: rules[2].pattern: does not compile (missing ), unterminated subpattern at position 7)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


from ..errors import ConfigError
from ..yamlconfig import ConfigErrors, load_strict

GROUPS = ("item", "title", "format", "content_type")
_TOP_KEYS = ("requests", "rules")
_RULE_KEYS = ("name", "pattern", "title", "format", "content_type", "case")
_CASES = ("keep", "upper", "lower")
_CACHE_SIZE = 1 << 16  # distinct actionNames remembered per rule set


def bundled_path(name: str) -> Path:
    """Path of a rules file shipped with the package: ``scielo_items.yaml`` or ``demo_items.yaml``."""
    return Path(__file__).resolve().parent / name


SCIELO_ITEMS = bundled_path("scielo_items.yaml")
DEMO_ITEMS = bundled_path("demo_items.yaml")


@dataclass(frozen=True, slots=True)
class ItemHit:
    """What one actionName is, for COUNTER."""

    item: str
    title: str | None
    format: str | None
    content_type: str | None
    is_request: bool
    rule: str  # the rule's name, or "rules[i]"


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern
    title: str | None = None
    format: str | None = None
    content_type: str | None = None
    case: str = "keep"


class ItemRules:
    """An ordered rule list plus the content types that count as Requests.

    ``match(action_name)`` gives an :class:`ItemHit` or ``None`` (no rule matched: an unknown
    item). Results are cached per actionName (bounded), since pretables repeat URLs a lot.
    """

    def __init__(self, rules, requests, source: str = "<rules>") -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.requests: frozenset[str] = frozenset(requests)
        self.source = source
        self.match = lru_cache(maxsize=_CACHE_SIZE)(self._match)

    def __repr__(self) -> str:
        return f"ItemRules({self.source!r}, {len(self.rules)} rules, requests={sorted(self.requests)})"

    def _match(self, action_name: str) -> ItemHit | None:
        for rule in self.rules:
            m = rule.regex.search(action_name)
            if m is None:
                continue
            groups = m.groupdict()
            item = groups.get("item")
            if not item:
                continue  # the item group took part but matched nothing: not an item
            title = groups.get("title") or rule.title
            if rule.case == "upper":
                item, title = item.upper(), title.upper() if title else title
            elif rule.case == "lower":
                item, title = item.lower(), title.lower() if title else title
            content_type = groups.get("content_type") or rule.content_type
            return ItemHit(item=item, title=title or None, format=groups.get("format") or rule.format,
                           content_type=content_type, is_request=content_type in self.requests, rule=rule.name)
        return None


def load_rules(path: str | os.PathLike) -> ItemRules:
    """The rules of the YAML file ``path``; a :class:`ConfigError` (one line) when it is wrong."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"item rules file {path} not found; give the path of a rules YAML file "
                          f"(e.g. {SCIELO_ITEMS})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"item rules file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read item rules file {path}: {exc.strerror or exc}; check the path and "
                          "permissions") from None
    return rules_from_yaml(text, source=path.name)


def rules_from_yaml(text: str, source: str = "<rules>") -> ItemRules:
    """The rules of a YAML text; ``source`` names it in error messages."""
    err = ConfigErrors(source)
    data = load_strict(text, err)
    if not isinstance(data, dict) or "rules" not in data:
        raise err.fail("top level", "must be a mapping with 'rules' (a list of rules) and 'requests' (a list of "
                                    "content types)")
    _unknown(data, _TOP_KEYS, "", err)
    requests = _requests(data.get("requests"), err)
    raw_rules = data["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise err.fail("rules", "must be a non-empty list of rules (each item starting with '- pattern: ...')")
    rules = [_rule(raw, i, err) for i, raw in enumerate(raw_rules)]
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise err.fail(f"rules[{i}].name", f"{rule.name!r} is already the name of rules[{seen[rule.name]}]; "
                                               "give each rule its own name")
        seen[rule.name] = i
    if not any("content_type" in r.regex.groupindex for r in rules):
        produced = {r.content_type for r in rules}
        for j, ct in enumerate(requests):
            if ct not in produced:
                raise err.fail(f"requests[{j}]", f"{ct!r} is not the content_type of any rule (they are "
                                                 f"{', '.join(sorted(map(repr, produced)))}); fix the spelling or "
                                                 "remove it")
    return ItemRules(rules, requests, source=source)


# -- validation ---------------------------------------------------------------------------------
def _unknown(raw: dict, known, prefix: str, err: ConfigErrors) -> None:
    bad = [str(k) for k in raw if k not in known]
    if bad:
        plural = "s" if len(bad) > 1 else ""
        raise err.fail(f"{prefix}{bad[0]}", f"unknown key{plural} {', '.join(map(repr, bad))}; known keys are "
                                            f"{', '.join(known)}")


def _text(value, where: str, err: ConfigErrors) -> str:
    if not isinstance(value, str) or not value.strip():
        raise err.fail(where, f"{value!r} must be non-empty text")
    return value.strip()


def _requests(raw, err: ConfigErrors) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise err.fail("requests", "must be a list of content types, e.g. [full_text, pdf]")
    return tuple(_text(v, f"requests[{j}]", err) for j, v in enumerate(raw))


def _rule(raw, i: int, err: ConfigErrors) -> Rule:
    at = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise err.fail(at, "must be a mapping with at least 'pattern' (a regex with a named group 'item')")
    _unknown(raw, _RULE_KEYS, f"{at}.", err)
    if raw.get("pattern") in (None, ""):
        raise err.fail(f"{at}.pattern", "is required: a regex with a named group (?P<item>...)")
    pattern = raw["pattern"]
    if not isinstance(pattern, str):
        raise err.fail(f"{at}.pattern", f"{pattern!r} must be text (quote it with single quotes in YAML)")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise err.fail(f"{at}.pattern", f"does not compile ({exc}); fix the regex") from None
    if "item" not in regex.groupindex:
        raise err.fail(f"{at}.pattern", "has no named group 'item'; write the item's identifier as (?P<item>...)")
    extra = [g for g in regex.groupindex if g not in GROUPS]
    if extra:
        raise err.fail(f"{at}.pattern", f"unknown named group{'s' if len(extra) > 1 else ''} "
                                        f"{', '.join(map(repr, extra))}; known groups are {', '.join(GROUPS)} "
                                        "(use (?:...) for other groups)")
    literals = {}
    for key in ("title", "format", "content_type"):
        value = raw.get(key)
        literals[key] = None if value is None else _text(value, f"{at}.{key}", err)
    if literals["content_type"] is None and "content_type" not in regex.groupindex:
        raise err.fail(f"{at}.content_type", "is required (or a named group (?P<content_type>...) in the pattern): "
                                             "it decides whether a hit is a Request")
    name = raw.get("name")
    name = at if name is None else _text(name, f"{at}.name", err)
    case = raw.get("case", "keep")
    if case not in _CASES:
        raise err.fail(f"{at}.case", f"{case!r} must be one of {', '.join(_CASES)}")
    return Rule(name=name, regex=regex, case=case, **literals)
