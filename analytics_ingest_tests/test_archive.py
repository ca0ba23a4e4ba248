"""Re-archiving Matomo reports: invalidation, the three runners, and checking the result.

Real parts only: the loopback fake Matomo (with its opt-in archive model), real subprocesses for
the local runner, moto for ECS and SSM. Failed SSM invocations, which moto never produces, come
from botocore's Stubber or a thin fake client.
"""

from __future__ import annotations

import json
import shlex
import sys

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from analytics_ingest.errors import ConfigError, IngestError
from analytics_ingest.matomo.api import MatomoApi
from analytics_ingest.matomo.archive import (
    DEFAULT_LOCAL_COMMAND, ArchiveError, ArchiveSettings, LocalRunner, NoRunner, RunnerResult, SsmRunner,
    invalidate_days,
)
from analytics_ingest.matomo.reports import DayTotals, compare_with_ledger, day_totals
from analytics_ingest_tests.fake_matomo import FakeMatomo

TOKEN = "s3cret-t0ken"
REGION = "eu-west-1"
COMMAND_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"  # SSM command ids are UUIDs
DAY = "2024-03-14"


# --- helpers ---------------------------------------------------------------------------------------

def hits(n: int, *, day: str = DAY, downloads: int = 0, start: int = 0) -> list[dict]:
    """n hits on ``day``, one visitor per hit; the last ``downloads`` of them are downloads."""
    out = []
    for i in range(start, start + n):
        req = {"idsite": 1, "rec": 1, "apiv": 1, "cip": f"192.0.2.{i + 1}", "ua": "UA",
               "cdt": f"{day} 10:{i:02d}:00", "pv_id": f"pv{i:04d}", "url": f"https://example.org/p/{i}"}
        if i >= start + n - downloads:
            req["download"] = f"https://example.org/files/{i}.pdf"
        out.append(req)
    return out


def track(fake: FakeMatomo, reqs: list[dict]) -> None:
    answer = requests.post(f"{fake.url}/matomo.php", json={"requests": reqs, "token_auth": TOKEN}, timeout=10)
    assert answer.json()["tracked"] == len(reqs)


def archive_command(fake: FakeMatomo) -> str:
    """A LocalRunner template whose process asks the fake Matomo to archive (like core:archive)."""
    code = ("import sys, urllib.request as u; "
            "r = u.urlopen(u.Request(sys.argv[1] + '/fake/archive?idsite=' + sys.argv[2] + '&from=' "
            "+ sys.argv[3] + '&to=' + sys.argv[4], method='POST'), timeout=10); "
            "print('archived:', r.read().decode())")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} {fake.url} {{idsite}} {{first_day}} {{last_day}}"


def python_command(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


@pytest.fixture
def fake():
    with FakeMatomo(token=TOKEN, archiving=True) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def api(fake):
    return MatomoApi(fake.url, TOKEN, timeout=10)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text and text
    assert TOKEN not in text
    return text


# --- invalidation ----------------------------------------------------------------------------------

def test_invalidate_days_posts_one_call_for_every_period_with_the_token_in_the_body(fake, api):
    answer = invalidate_days(api, 1, ["2024-03-15", "2024-03-14", "2024-03-15"])

    assert answer["result"] == "success"
    assert fake.invalidations == [{"idSites": [1], "dates": ["2024-03-14", "2024-03-15"], "period": None,
                                   "segment": None, "cascadeDown": False}]
    method, path, params = fake.requests_log[-1]
    assert method == "POST" and fake.api_tokens_in_url == 0  # the token travelled in the body
    assert params["method"] == "CoreAdminHome.invalidateArchivedReports" and params["token_auth"] == "***"
    assert "period" not in params  # so week, month and year are invalidated with the days
    assert invalidate_days(api, 1, []) is None and len(fake.invalidations) == 1


def test_invalidate_days_refused_is_one_line_without_the_token(fake):
    wrong = MatomoApi(fake.url, "not-the-token")
    with pytest.raises(ArchiveError) as exc:
        invalidate_days(wrong, 1, [DAY])
    assert "site 1" in one_line(exc) and "not-the-token" not in str(exc.value)
    with pytest.raises(IngestError):
        invalidate_days(wrong, 1, ["14/03/2024"])


def test_invalidated_week_is_recomputed_with_the_day(fake, api):
    track(fake, hits(2))
    fake.archive(1, DAY, DAY)
    track(fake, hits(3, start=2))
    fake.archive(1, DAY, DAY)  # valid archives are reused: still 2 until invalidated
    assert day_totals(api, 1, DAY).nb_pageviews == 2

    invalidate_days(api, 1, [DAY])
    assert fake.archive_status(1)["week 2024-03-11"] == "invalidated"
    run = fake.archive(1, DAY, DAY)

    assert {"day 2024-03-14", "week 2024-03-11", "month 2024-03-01", "year 2024-01-01"} <= set(run["recomputed"])
    week = api.call("VisitsSummary.get", idSite=1, period="week", date=DAY)
    assert week["nb_visits"] == 5 and day_totals(api, 1, DAY).nb_visits == 5


# --- local runner ----------------------------------------------------------------------------------

def test_local_runner_archives_through_a_real_process_then_the_reports_match(fake, api, tmp_path):
    track(fake, hits(5, downloads=2))
    assert day_totals(api, 1, DAY) == DayTotals(1, DAY, 0, 0, 0, 0)  # never archived: []

    invalidate_days(api, 1, [DAY])
    result = LocalRunner(archive_command(fake), cwd=tmp_path, timeout_s=60).run(1, DAY, DAY)

    assert isinstance(result, RunnerResult) and result.runner == "local" and result.exit_status == 0
    assert f"{fake.url} 1 {DAY} {DAY}" in result.command and "archived:" in result.output_tail
    assert result.detail["cwd"] == str(tmp_path)
    assert fake.archive_runs[-1]["recomputed"][0] == f"day {DAY}"
    totals = day_totals(api, 1, DAY)
    assert totals == DayTotals(1, DAY, nb_visits=5, nb_actions=5, nb_pageviews=3, nb_downloads=2)
    verdict = compare_with_ledger(totals, 3, 2, exact=True)
    assert verdict.passed and "matches" in verdict.description


def test_local_runner_default_template_and_cwd():
    runner = LocalRunner()
    assert runner.argv_template[:4] == ["php", "console", "--ignore-warn", "core:archive"]
    assert DEFAULT_LOCAL_COMMAND.endswith("--force-date-range={first_day},{last_day}")


def test_local_runner_failing_command_is_one_line_with_the_last_stderr_line(tmp_path):
    code = ("import sys; print('archiving site 1', flush=True); "
            "print('PHP Warning: something', file=sys.stderr); "
            "print('ERROR: MySQL server has gone away', file=sys.stderr); sys.exit(3)")
    with pytest.raises(ArchiveError) as exc:
        LocalRunner(python_command(code) + " --token-auth=" + TOKEN, cwd=tmp_path).run(1, DAY, DAY)
    text = one_line(exc)
    assert "status 3" in text and "MySQL server has gone away" in text and "PHP Warning" not in text
    assert "'python" in text and TOKEN not in text
    shown = LocalRunner(python_command("pass") + " --token-auth=" + TOKEN).run(1, DAY, DAY).command
    assert shown.endswith("--token-auth=***") and TOKEN not in shown


def test_local_runner_missing_program_missing_cwd_and_timeout(tmp_path):
    with pytest.raises(ArchiveError) as exc:
        LocalRunner("no-such-archiver-program {idsite}").run(1, DAY, DAY)
    assert "not found" in one_line(exc)
    with pytest.raises(ArchiveError) as exc:
        LocalRunner(cwd=tmp_path / "missing").run(1, DAY, DAY)
    assert "MATOMO_ARCHIVE_CWD" in one_line(exc)
    with pytest.raises(ArchiveError) as exc:
        LocalRunner(python_command("import time; time.sleep(30)"), timeout_s=0.5).run(1, DAY, DAY)
    assert "did not finish" in one_line(exc)
    with pytest.raises(IngestError):
        LocalRunner().run(1, "2024-03-15", "2024-03-14")


# --- silent failure --------------------------------------------------------------------------------

def test_archiver_that_succeeds_without_recomputing_fails_the_ledger_check(fake, api):
    track(fake, hits(2))
    fake.archive(1, DAY, DAY)
    track(fake, hits(3, start=2, downloads=1))
    invalidate_days(api, 1, [DAY])
    fake.archive_fails = True

    result = LocalRunner(archive_command(fake)).run(1, DAY, DAY)

    assert result.exit_status == 0 and fake.archive_runs[-1]["failed_silently"]
    totals = day_totals(api, 1, DAY)
    assert (totals.nb_pageviews, totals.nb_downloads) == (2, 0)  # the stale archive
    verdict = compare_with_ledger(totals, 4, 1, exact=True)
    assert not verdict.passed and "\n" not in verdict.description
    assert "2 of 4 imported pageviews (2 missing)" in verdict.description
    assert "0 of 1 imported downloads" in verdict.description and "core:archive" in verdict.description
    assert verdict.metrics["nb_pageviews"].difference == -2
    assert not compare_with_ledger(totals, 4, 1, exact=False).passed  # never less, whatever exact


def test_compare_with_ledger_more_in_matomo_passes_only_when_not_exact():
    totals = DayTotals(1, DAY, nb_visits=9, nb_actions=12, nb_pageviews=10, nb_downloads=2)
    loose = compare_with_ledger(totals, 7, 2, exact=False)
    assert loose.passed and "+3 pageviews" in loose.description
    strict = compare_with_ledger(totals, 7, 2, exact=True)
    assert not strict.passed and "10 pageviews where 7 were imported (+3)" in strict.description


def test_day_totals_reads_empty_and_string_answers():
    class Api:
        def call(self, method, **params):
            assert params == {"idSite": 1, "period": "day", "date": DAY}
            return [] if method == "VisitsSummary.get" else {"nb_pageviews": "4", "nb_downloads": 1}

    assert day_totals(Api(), 1, DAY) == DayTotals(1, DAY, 0, 0, 4, 1)


# --- SSM runner ------------------------------------------------------------------------------------

@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def ecs_cluster(containers_by_instance: list[list[str]], cluster: str = "platform-web") -> list[str]:
    """A cluster with one EC2 container instance per entry, running one task per container name.

    One container per task: moto's tasks report only the first container of their definition.
    """
    ec2 = boto3.client("ec2", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName=cluster)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_ids = []
    for n, names in enumerate(containers_by_instance):
        instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        document = json.dumps({"instanceId": instance_id, "region": REGION, "instanceType": "t3.medium"})
        arn = ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document)[
            "containerInstance"]["containerInstanceArn"]
        instance_ids.append(instance_id)
        for name in names:
            ecs.register_task_definition(family=f"{name}-{n}", containerDefinitions=[
                {"name": name, "image": f"{name}:latest", "memory": 128, "cpu": 64}])
            ecs.start_task(cluster=cluster, taskDefinition=f"{name}-{n}", containerInstances=[arn])
    return instance_ids


def test_ssm_runner_finds_the_matomo_instance_and_sends_the_archive_command(aws):
    _first, _empty, matomo_host = ecs_cluster([["nginx"], [], ["matomo-db", "matomo"]])
    ssm = boto3.client("ssm", region_name=REGION)
    sent = []  # what the runner asked for (moto's list_commands adds every instance when no Targets)
    ssm.meta.events.register("provide-client-params.ssm.SendCommand", lambda params, **kw: sent.append(params))
    runner = SsmRunner(region=REGION, execution_timeout_s=7200, ssm_client=ssm, sleep=lambda s: None)

    result = runner.run(1, "2024-03-14", "2024-03-16")

    assert result.runner == "ssm" and result.exit_status == 0
    assert result.detail["ec2_instance_id"] == matomo_host and result.detail["status"] == "Success"
    assert [p["InstanceIds"] for p in sent] == [[matomo_host]]
    (command,) = ssm.list_commands()["Commands"]
    assert command["DocumentName"] == "AWS-RunShellScript" and command["CommandId"] == result.detail["command_id"]
    assert command["Parameters"]["executionTimeout"] == ["7200"]
    script = "\n".join(command["Parameters"]["commands"])
    assert "docker exec -u www-data" in script and "docker ps -q --filter name=matomo" in script
    assert "./console --ignore-warn core:archive --force-idsites=1 --force-date-range=2024-03-14,2024-03-16" in script
    assert result.command == script


def test_ssm_runner_failed_invocation_is_one_line_with_the_stderr_tail(aws):
    (host,) = ecs_cluster([["matomo"]])
    ssm = boto3.client("ssm", region_name=REGION)
    stub = Stubber(ssm)
    stub.add_response("send_command", {"Command": {"CommandId": COMMAND_ID}})
    stub.add_client_error("get_command_invocation", service_error_code="InvocationDoesNotExist")
    stub.add_response("get_command_invocation", {"Status": "InProgress", "ResponseCode": -1})
    stub.add_response("get_command_invocation", {
        "Status": "Failed", "ResponseCode": 1, "StatusDetails": "Failed",
        "StandardErrorContent": "INFO starting\nERROR [2024-03-14] Allowed memory size exhausted\n"})
    slept = []
    with stub:
        with pytest.raises(ArchiveError) as exc:
            SsmRunner(region=REGION, ssm_client=ssm, poll_interval_s=2, sleep=slept.append).run(1, DAY, DAY)
        stub.assert_no_pending_responses()
    text = one_line(exc)
    assert COMMAND_ID in text and host in text and "Failed (exit status 1)" in text
    assert "Allowed memory size exhausted" in text and "INFO starting" not in text
    assert slept == [2, 2, 2]


class StuckSsm:
    """An SSM client whose command never leaves InProgress (then TimedOut/Cancelled on demand)."""

    def __init__(self, final: str | None = None):
        self.final = final
        self.polls = 0
        self.cancelled = []

    def send_command(self, **kwargs):
        return {"Command": {"CommandId": COMMAND_ID}}

    def get_command_invocation(self, **kwargs):
        self.polls += 1
        if self.final and self.polls > 1:
            return {"Status": self.final, "ResponseCode": -1, "StandardErrorContent": ""}
        return {"Status": "InProgress", "ResponseCode": -1}

    def cancel_command(self, **kwargs):
        self.cancelled.append(kwargs)


def test_ssm_runner_gives_up_after_its_timeout_and_cancels(aws):
    ecs_cluster([["matomo"]])
    ssm = StuckSsm()
    with pytest.raises(ArchiveError) as exc:
        SsmRunner(region=REGION, ssm_client=ssm, poll_interval_s=10, timeout_s=30,
                  sleep=lambda s: None).run(1, DAY, DAY)
    assert "did not finish within 30 s and was cancelled" in one_line(exc)
    assert ssm.polls == 3 and ssm.cancelled and ssm.cancelled[0]["CommandId"] == COMMAND_ID

    ssm = StuckSsm(final="TimedOut")
    with pytest.raises(ArchiveError) as exc:
        SsmRunner(region=REGION, ssm_client=ssm, sleep=lambda s: None).run(1, DAY, DAY)
    assert "ended TimedOut" in one_line(exc) and not ssm.cancelled


def test_ssm_runner_without_a_matomo_container_is_one_line(aws):
    ecs_cluster([["nginx"], []])
    runner = SsmRunner(region=REGION, sleep=lambda s: None)  # default clients, as in production
    with pytest.raises(ArchiveError) as exc:
        runner.run(1, DAY, DAY)
    assert runner.ecs.meta.config.retries["mode"] == "adaptive" and runner.ecs.meta.region_name == REGION
    text = one_line(exc)
    assert "'matomo'" in text and "'platform-web'" in text and "2 container instance(s)" in text
    assert boto3.client("ssm", region_name=REGION).list_commands()["Commands"] == []

    with pytest.raises(ArchiveError) as exc:
        SsmRunner(cluster="elsewhere", region=REGION, sleep=lambda s: None).run(1, DAY, DAY)
    assert "cluster 'elsewhere' not found" in one_line(exc) and "MATOMO_ECS_CLUSTER" in str(exc.value)


# --- configuration ---------------------------------------------------------------------------------

def test_runner_from_env_defaults_and_choices(tmp_path):
    assert isinstance(ArchiveSettings.from_env({}).runner(), NoRunner)
    none = ArchiveSettings.from_env({"MATOMO_ARCHIVE_RUNNER": " None "}).runner().run(1, DAY, DAY)
    assert none.runner == "none" and none.exit_status is None and "cron" in none.output_tail

    local = ArchiveSettings.from_env({"MATOMO_ARCHIVE_RUNNER": "local", "MATOMO_ARCHIVE_CWD": str(tmp_path),
                                      "MATOMO_ARCHIVE_TIMEOUT": "90",
                                      "MATOMO_ARCHIVE_COMMAND": "./archive.sh {idsite}"}).runner()
    assert isinstance(local, LocalRunner)
    assert (local.argv_template, local.cwd, local.timeout_s) == (["./archive.sh", "{idsite}"], str(tmp_path), 90)

    ssm = ArchiveSettings.from_env({"MATOMO_ARCHIVE_RUNNER": "ssm", "MATOMO_ECS_CLUSTER": "web", "AWS_REGION": "eu-west-2",
                                    "MATOMO_ECS_CONTAINER": "analytics",
                                    "MATOMO_SSM_COMMAND": "echo {container} {idsite}"}).runner()
    assert isinstance(ssm, SsmRunner)
    assert (ssm.cluster, ssm.container, ssm.region, ssm.command_lines, ssm.execution_timeout_s) == (
        "web", "analytics", "eu-west-2", ["echo {container} {idsite}"], 3600)
    ssm_default_region = ArchiveSettings.from_env({"MATOMO_ARCHIVE_RUNNER": "ssm", "AWS_DEFAULT_REGION": "us-east-1"})
    assert ssm_default_region.runner().region == "us-east-1"
    assert ssm_default_region.archives_itself and not ArchiveSettings.from_env({}).archives_itself


@pytest.mark.parametrize("env, names", [
    ({"MATOMO_ARCHIVE_RUNNER": "cron"}, ["MATOMO_ARCHIVE_RUNNER", "none, local, ssm"]),
    ({"MATOMO_ARCHIVE_RUNNER": "local", "MATOMO_ARCHIVE_TIMEOUT": "soon"}, ["MATOMO_ARCHIVE_TIMEOUT"]),
    ({"MATOMO_ARCHIVE_RUNNER": "ssm", "MATOMO_ARCHIVE_TIMEOUT": "0"}, ["MATOMO_ARCHIVE_TIMEOUT"]),
    ({"MATOMO_ARCHIVE_RUNNER": "local", "MATOMO_ARCHIVE_CWD": "/no/such/matomo"}, ["MATOMO_ARCHIVE_CWD"]),
    ({"MATOMO_ARCHIVE_RUNNER": "local", "MATOMO_ARCHIVE_COMMAND": "php 'console"}, ["MATOMO_ARCHIVE_COMMAND"]),
    ({"MATOMO_ARCHIVE_RUNNER": "ssm", "MATOMO_ECS_CONTAINER": "matomo; rm -rf /"}, ["MATOMO_ECS_CONTAINER"]),
])
def test_runner_from_env_rejects_bad_values_in_one_line(env, names):
    with pytest.raises(ConfigError) as exc:
        ArchiveSettings.from_env(env).runner()
    text = one_line(exc)
    assert all(name in text for name in names)


# --- the fake's archive endpoint -------------------------------------------------------------------

def test_fake_archive_endpoint_errors_and_opt_in():
    with FakeMatomo(token=TOKEN) as live:
        track(live, hits(1))
        assert requests.post(f"{live.url}/fake/archive?idsite=1&from={DAY}&to={DAY}", timeout=5).status_code == 409
        # live mode unchanged: reports without archiving
        assert day_totals(MatomoApi(live.url, TOKEN), 1, DAY).nb_pageviews == 1
    with FakeMatomo(token=TOKEN, archiving=True) as fake:
        bad = requests.post(f"{fake.url}/fake/archive", data={"idsite": "7", "from": DAY, "to": DAY}, timeout=5)
        assert bad.status_code == 400 and bad.json()["status"] == "error"
        ok = requests.get(f"{fake.url}/fake/archive", params={"idsite": 1, "from": DAY, "to": DAY}, timeout=5)
        assert ok.json()["status"] == "success" and fake.archive_status(1)[f"day {DAY}"] == "valid"
        assert fake.errors == []


def test_site_searches_count_as_the_imported_pages_they_are():
    # Matomo 4.12.3 files a page whose URL has a search parameter (?q=...) under nb_searches, not
    # nb_pageviews: 417 imported pages showed as 373 page views + 44 searches on the real server.
    totals = DayTotals(1, DAY, nb_visits=300, nb_actions=443, nb_pageviews=373, nb_downloads=26, nb_searches=44)
    assert compare_with_ledger(totals, 417, 26, exact=True).passed
    short = DayTotals(1, DAY, nb_visits=300, nb_actions=440, nb_pageviews=373, nb_downloads=26, nb_searches=41)
    verdict = compare_with_ledger(short, 417, 26, exact=True)
    assert not verdict.passed and "3 missing" in verdict.description
