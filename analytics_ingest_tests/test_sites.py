"""Site configuration: valid files load, every mistake is one line naming the key."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_ingest.errors import ConfigError
from analytics_ingest.sites import demo_sites_path, load_sites

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


def write(tmp_path, text):
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


def test_a_full_site_loads(tmp_path):
    (site,) = load_sites(write(tmp_path, GOOD))
    assert site.key == "revista_exemplo" and site.id == 3
    assert site.log_dir == (tmp_path / "logs" / "site-3").resolve()
    assert site.classify.enable_static and site.classify.exclude_paths == ("/health*",)
    assert site.rsync_commands == ("rsync -az a:/x/ logs/site-3/", "rsync -az b:/y/ logs/site-3/")
    # SciELO's scl: 2 files a day up to 2021-05-25, 1 after.
    assert site.expected_on(dt.date(2021, 5, 25)) == 2 and site.expected_on(dt.date(2021, 5, 26)) == 1
    assert site.expected_on(dt.date(2020, 1, 1)) == 1


def test_the_demo_file_loads():
    (site,) = load_sites(demo_sites_path())
    assert site.key == "demo_site" and site.log_dir == demo_sites_path().parent


@pytest.mark.parametrize(
    "change, where, what",
    [
        (("timezone: America/Sao_Paulo", "timezone: Mars/Base"), "sites[0].timezone", "unknown timezone"),
        (("id: 3", "id: zero"), "sites[0].id", "whole number"),
        (("start_date: 2024-01-01", "start_date: soon"), "sites[0].start_date", "not a date"),
        (("format: combined", "format: klingon"), "sites[0].format", "unknown log format"),
        (("main_url: https://revista.example.org", "main_url: revista"), "sites[0].main_url", "http(s)"),
        (("classify: {enable_static: true", "classify: {enable_statics: true"), "sites[0].classify.enable_statics",
         "unknown option"),
        (("    rsync_commands:", "    colour: blue\n    rsync_commands:"), "sites[0].colour", "unknown key"),
        (("      - {from: 2021-05-26, count: 1}", "      - {from: 2021-05-26, count: -1}"),
         "sites[0].expected_files[1].count", "whole number"),
    ],
)
def test_mistakes_name_the_key(tmp_path, change, where, what):
    with pytest.raises(ConfigError) as info:
        load_sites(write(tmp_path, GOOD.replace(*change)))
    message = str(info.value)
    assert message.startswith(f"sites.yaml: {where}: ") and what in message and "\n" not in message


def test_duplicates_missing_file_and_empty_list(tmp_path):
    twice = GOOD + GOOD.split("sites:\n", 1)[1].replace("id: 3", "id: 4")
    with pytest.raises(ConfigError, match=r"sites\[1\]\.key: 'revista_exemplo' is already used"):
        load_sites(write(tmp_path, twice))
    with pytest.raises(ConfigError, match="ANALYTICS_INGEST_SITES"):
        load_sites(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="sites: is empty"):
        load_sites(write(tmp_path, "sites: []\n"))
