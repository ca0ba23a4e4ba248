"""Strict YAML for configuration files (the sites file, COUNTER item rules).

PyYAML silently keeps the last of two equal keys in a mapping; a configuration typo must not pass
like that. Every problem becomes one :class:`ConfigError` line: ``file: where: what to do``.
"""

from __future__ import annotations

import yaml

from .errors import ConfigError


class ConfigErrors:
    """Builds the one-line errors of one configuration file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(" ".join(f"{self.source}: {where}: {what}".split("\n")))


class _DuplicateKey(Exception):
    def __init__(self, key, line: int) -> None:
        super().__init__(key)
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _StrictLoader, node, deep: bool = False):
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: let PyYAML report it
            break
        if duplicate:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict(text: str, err: ConfigErrors):
    """The YAML document of ``text``; a repeated key or a syntax error is ``err.fail(...)``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as dup:
        raise err.fail(f"line {dup.line}", f"key {dup.key!r} is given twice in one mapping; keep one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise err.fail(where, f"not valid YAML ({problem}); fix the syntax") from None
