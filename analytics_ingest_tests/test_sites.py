"""Site configuration: valid files load, every mistake is one line naming the file and the key."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from analytics_ingest.errors import ConfigError
from analytics_ingest.sites import ENV_SITES, ExpectedFiles, demo_sites_path, load_sites
from analytics_ingest.weblogs.classify import ClassifyOptions

GOOD = """
sites:
  - id: 3
    name: Revista Exemplo
    main_url: https://revista.example.org
    log_dir: logs/site-3
    file_pattern: "*.log.gz"
    format: combined
    timezone: America/Sao_Paulo
    start_date: 2024-01-01
    classify: {enable_static: true, exclude_paths: ["/health*"]}
    expected_files:
      - {from: 2021-01-01, count: 2}
      - {from: 2021-05-26, count: 1}
    rsync_commands: "rsync -az a:/x/ logs/site-3/; rsync -az b:/y/ logs/site-3/"
"""

MINIMAL = {"id": 1, "name": "Demo", "main_url": "https://example.org", "log_dir": "logs",
           "start_date": dt.date(2024, 3, 1)}


def write(tmp_path, text):
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


def write_sites(tmp_path, *sites):
    return write(tmp_path, yaml.safe_dump({"sites": list(sites)}, sort_keys=False))


def site(**changes):
    """MINIMAL with changes; a value of ... removes the key."""
    out = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_a_full_site_loads(tmp_path):
    (s,) = load_sites(write(tmp_path, GOOD))
    assert (s.id, s.key, s.name, s.main_url) == (3, "revista_exemplo", "Revista Exemplo", "https://revista.example.org")
    assert s.log_dir == tmp_path / "logs" / "site-3" and s.log_dir.is_absolute()
    assert (s.file_pattern, s.format, s.timezone, s.start_date) == ("*.log.gz", "combined", "America/Sao_Paulo",
                                                                    dt.date(2024, 1, 1))
    assert s.classify == ClassifyOptions(enable_static=True, exclude_paths=("/health*",))
    assert s.rsync_commands == ("rsync -az a:/x/ logs/site-3/", "rsync -az b:/y/ logs/site-3/")
    assert (s.lanes, s.batch_size) == (4, 500)
    # SciELO's scl: 2 files a day up to 2021-05-25, 1 after; an open range ends where the next starts.
    assert s.expected_files == (ExpectedFiles(dt.date(2021, 1, 1), dt.date(2021, 5, 25), 2),
                                ExpectedFiles(dt.date(2021, 5, 26), None, 1))
    assert s.expected_on(dt.date(2021, 5, 25)) == 2 and s.expected_on(dt.date(2021, 5, 26)) == 1
    assert s.expected_on(dt.date(2030, 1, 1)) == 1 and s.expected_on(dt.date(2020, 1, 1)) == 1  # default


def test_defaults_and_a_minimal_site(tmp_path):
    (s,) = load_sites(write_sites(tmp_path, MINIMAL))
    assert s.key == "demo" and s.file_pattern == "*" and s.format is None and s.timezone == "UTC"
    assert s.classify == ClassifyOptions() and s.expected_files == () and s.rsync_commands == ()
    assert s.expected_on(dt.date(2024, 3, 1)) == 1


def test_the_demo_file_loads_and_is_the_default(monkeypatch):
    monkeypatch.delenv(ENV_SITES, raising=False)
    (s,) = load_sites()
    assert (s.id, s.key, s.name, s.main_url) == (1, "demo_site", "Demo site", "https://example.org")
    assert s.log_dir == demo_sites_path().parent and s.file_pattern == "access.log*" and s.format is None
    assert s.timezone == "UTC" and s.start_date == dt.date(2024, 3, 14) and s.rsync_commands == ()
    assert s.expected_files == (ExpectedFiles(dt.date(2024, 3, 14), None, 1),)
    assert sorted(p.name for p in s.log_dir.glob(s.file_pattern)) == ["access.log.2024-03-14.gz", "access.log.2024-03-15"]


def test_the_env_var_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_SITES, str(write_sites(tmp_path, site(id=7))))
    assert [s.id for s in load_sites()] == [7]


def test_paths_expand_home_and_env_vars(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_ROOT", "/srv/logs")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    a, b, c = load_sites(write_sites(tmp_path, site(log_dir="${LOG_ROOT}/1"), site(id=2, key="b", log_dir="~/logs"),
                                     site(id=3, key="c", log_dir="/abs/../abs/x/")))
    assert (str(a.log_dir), b.log_dir, str(c.log_dir)) == ("/srv/logs/1", tmp_path / "home" / "logs", "/abs/x")


def test_values_in_other_shapes(tmp_path):
    (s,) = load_sites(write_sites(tmp_path, site(
        key="web_1", format="auto", rsync_commands=["rsync a b", "  ", "echo ${SECRET}"],
        classify={"exclude_paths": "/health*", "download_extensions": None, "enable_bots": True},
        expected_files=[{"from": "2024-01-01", "to": "2024-01-31", "count": 2}, {"from": "2024-03-01", "to": None,
                                                                                 "count": 0}],
    )))
    assert s.key == "web_1" and s.format is None
    assert s.rsync_commands == ("rsync a b", "echo ${SECRET}")  # unexpanded: the shell expands secrets
    assert s.classify == ClassifyOptions(exclude_paths=("/health*",), enable_bots=True)
    assert [s.expected_on(dt.date(2024, 1, d)) for d in (1, 31)] == [2, 2]
    assert s.expected_on(dt.date(2024, 2, 10)) == 1 and s.expected_on(dt.date(2025, 1, 1)) == 0


TZ_MESSAGE = "sites.yaml: sites[0].timezone: unknown timezone 'Mars/Base'; use an IANA name such as Europe/Paris"


def test_the_timezone_message_reads_as_documented(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_sites(write_sites(tmp_path, site(timezone="Mars/Base")))
    assert str(info.value) == TZ_MESSAGE


@pytest.mark.parametrize(
    "changes, where, what",
    [
        ({"id": ...}, "sites[0].id", "is required"),
        ({"start_date": ...}, "sites[0].start_date", "is required"),
        ({"log_dir": ""}, "sites[0].log_dir", "is required"),
        ({"id": "zero"}, "sites[0].id", "whole number >= 1"),
        ({"id": 0}, "sites[0].id", "whole number >= 1"),
        ({"id": True}, "sites[0].id", "whole number >= 1"),
        ({"name": 5}, "sites[0].name", "non-empty text"),
        ({"key": "Bad-Key"}, "sites[0].key", "lower-case letters"),
        ({"name": "!!!"}, "sites[0].key", "cannot be derived from the name"),
        ({"main_url": "revista"}, "sites[0].main_url", "not an http(s) URL"),
        ({"main_url": "ftp://example.org"}, "sites[0].main_url", "not an http(s) URL"),
        ({"log_dir": "${ANALYTICS_INGEST_TEST_UNSET}/x"}, "sites[0].log_dir",
         "environment variable ANALYTICS_INGEST_TEST_UNSET"),
        ({"log_dir": ["a"]}, "sites[0].log_dir", "non-empty text"),
        ({"file_pattern": "logs/*.gz"}, "sites[0].file_pattern", "file names only"),
        ({"format": "klingon"}, "sites[0].format", "unknown log format"),
        ({"format": "regex"}, "sites[0].format", "not supported"),
        ({"timezone": "Europe"}, "sites[0].timezone", "unknown timezone"),
        ({"timezone": "../etc/passwd"}, "sites[0].timezone", "unknown timezone"),
        ({"start_date": "soon"}, "sites[0].start_date", "not a date"),
        ({"colour": "blue"}, "sites[0].colour", "unknown key 'colour'"),
        ({"colour": "blue", "size": 3}, "sites[0].colour", "unknown keys 'colour', 'size'"),
        ({"classify": ["enable_static"]}, "sites[0].classify", "must be a mapping"),
        ({"classify": {"enable_statics": True}}, "sites[0].classify.enable_statics", "unknown option"),
        ({"classify": {"enable_static": "yes"}}, "sites[0].classify.enable_static", "true or false"),
        ({"classify": {"exclude_paths": [1, 2]}}, "sites[0].classify.exclude_paths", "list of text"),
        ({"expected_files": {"from": "2024-01-01"}}, "sites[0].expected_files", "must be a list"),
        ({"expected_files": ["x"]}, "sites[0].expected_files[0]", "must be {from"),
        ({"expected_files": [{"from": "2024-01-01", "count": 1, "until": "2025-01-01"}]},
         "sites[0].expected_files[0].until", "unknown key"),
        ({"expected_files": [{"from": "2024-01-01"}]}, "sites[0].expected_files[0].count", "is required"),
        ({"expected_files": [{"count": 1}]}, "sites[0].expected_files[0].from", "is required"),
        ({"expected_files": [{"from": "soon", "count": 1}]}, "sites[0].expected_files[0].from", "not a date"),
        ({"expected_files": [{"from": "2024-01-01", "to": "later", "count": 1}]}, "sites[0].expected_files[0].to",
         "not a date"),
        ({"expected_files": [{"from": "2024-02-01", "to": "2024-01-01", "count": 1}]},
         "sites[0].expected_files[0].to", "is before from"),
        ({"expected_files": [{"from": "2024-01-01", "count": -1}]}, "sites[0].expected_files[0].count",
         "whole number >= 0"),
        ({"expected_files": [{"from": "2024-03-01", "count": 1},
                             {"from": "2024-01-01", "to": "2024-03-01", "count": 2}]},
         "sites[0].expected_files[0]", "overlaps sites[0].expected_files[1] (2024-01-01 to 2024-03-01)"),
        ({"expected_files": [{"from": "2024-01-01", "count": 1}, {"from": "2024-01-01", "count": 2}]},
         "sites[0].expected_files[1].from", "also the start of"),
        ({"rsync_commands": 5}, "sites[0].rsync_commands", "list of shell commands"),
        ({"rsync_commands": ["rsync a b", 3]}, "sites[0].rsync_commands[1]", "must be a shell command"),
        ({"lanes": 0}, "sites[0].lanes", "whole number >= 1"),
        ({"batch_size": "many"}, "sites[0].batch_size", "whole number >= 1"),
    ],
)
def test_mistakes_name_the_key(tmp_path, monkeypatch, changes, where, what):
    monkeypatch.delenv("ANALYTICS_INGEST_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        load_sites(write_sites(tmp_path, site(**changes)))
    message = str(info.value)
    assert message.startswith(f"sites.yaml: {where}: ") and what in message and "\n" not in message, message


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("- id: 1\n", "top level", "must be a mapping with the key 'sites'"),
        ("site: []\n", "top level", "must be a mapping with the key 'sites'"),
        ("sites: [{id: 1}]\nsite: x\n", "site", "unknown top-level key 'site'"),
        ("sites: {id: 1}\n", "sites", "must be a list"),
        ("sites: []\n", "sites", "is empty"),
        ("sites:\n  - just text\n", "sites[0]", "must be a mapping"),
        ("sites:\n  - id: 1\n    name: A: B\n", "line 3", "not valid YAML (mapping values are not allowed here)"),
        ("sites:\n  - id: 1\n    name: A\n    id: 2\n", "line 4", "key 'id' is given twice"),
    ],
)
def test_file_level_mistakes(tmp_path, text, where, what):
    with pytest.raises(ConfigError) as info:
        load_sites(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(f"sites.yaml: {where}: ") and what in message and "\n" not in message, message


def test_duplicate_ids_and_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"^sites.yaml: sites\[1\]\.id: 1 is already used by sites\[0\]; "):
        load_sites(write_sites(tmp_path, site(), site(key="other")))
    with pytest.raises(ConfigError, match=r"^sites.yaml: sites\[1\]\.key: 'demo' is already used by sites\[0\]; "):
        load_sites(write_sites(tmp_path, site(), site(id=2, name="DEMO")))
    twice = GOOD + GOOD.split("sites:\n", 1)[1].replace("id: 3", "id: 4")
    with pytest.raises(ConfigError, match=r"sites\[1\]\.key: 'revista_exemplo' is already used"):
        load_sites(write(tmp_path, twice))


def test_missing_or_unreadable_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_sites(missing)
    assert str(missing) in str(info.value) and ENV_SITES in str(info.value)
    monkeypatch.setenv(ENV_SITES, str(missing))
    with pytest.raises(ConfigError, match=ENV_SITES):
        load_sites()
    with pytest.raises(ConfigError, match="cannot read sites file"):
        load_sites(tmp_path)  # a folder


@pytest.mark.parametrize(
    "start, where, what",
    [
        ("2024-02-30", "sites[1].start_date", "'2024-02-30' is not a date (day is out of range for month)"),
        ("2024-13-01", "sites[1].start_date", "'2024-13-01' is not a date (month must be in 1..12)"),
        ("2024-02-30 10:00:00", "sites[1].start_date", "'2024-02-30 10:00:00' is not a date"),
        ("tomorrow", "sites[1].start_date", "'tomorrow' is not a date"),
        ("2024-01-01\n    expected_files: [{from: 2024-04-31, count: 1}]", "sites[1].expected_files[0].from",
         "'2024-04-31' is not a date"),
        ("2024-01-01\n    expected_files: [{from: 2023-01-01, to: 2023-02-29, count: 1}]",
         "sites[1].expected_files[0].to", "'2023-02-29' is not a date"),
    ],
)
def test_an_impossible_date_is_one_line_naming_the_key_and_the_site(tmp_path, start, where, what):
    # Unquoted, YAML itself reads 2024-02-30 as a date and fails building it: no ValueError traceback.
    text = ("sites:\n"
            "  - {id: 1, name: Demo, main_url: https://example.org, log_dir: logs, start_date: 2024-01-01}\n"
            "  - id: 2\n    name: Other\n    main_url: https://example.org\n    log_dir: logs\n"
            f"    start_date: {start}\n")
    with pytest.raises(ConfigError) as info:
        load_sites(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(f"sites.yaml: {where}: ") and what in message and "\n" not in message, message
    assert "YYYY-MM-DD" in message
