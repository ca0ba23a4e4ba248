"""Re-archiving Matomo reports after an import: invalidate the imported days, then run ``core:archive``.

Matomo shows imported hits only after its reports are (re)computed. Two facts from the systems
this project replaces shape this module:

* EEA invalidated every imported day through the Reporting API
  (``CoreAdminHome.invalidateArchivedReports``) and left the rest to an hourly ``core:archive``;
* GDS ran ``console core:archive --force-idsites=… --force-date-range=…`` inside the Matomo
  container, found through ECS and reached with SSM Run Command, and never invalidated
  explicitly (it relied on Matomo noticing backdated hits).

Here invalidation is explicit (:func:`invalidate_days`), and archiving is done by one of three
interchangeable runners with the same ``run(idsite, first_day, last_day) -> RunnerResult``:
:class:`LocalRunner` (a local command), :class:`SsmRunner` (AWS ECS + SSM) and :class:`NoRunner`
(Matomo's own cron archives). :class:`ArchiveSettings` (read from environment variables by its ``from_env``, in the shells)
picks and builds one.
Every failure is a one-line :class:`ArchiveError`; no message or result carries a secret.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..errors import ConfigError, IngestError, InputError
from .api import MatomoApiError

ENV_RUNNER = "MATOMO_ARCHIVE_RUNNER"
ENV_COMMAND = "MATOMO_ARCHIVE_COMMAND"
ENV_CWD = "MATOMO_ARCHIVE_CWD"
ENV_TIMEOUT = "MATOMO_ARCHIVE_TIMEOUT"
ENV_CLUSTER = "MATOMO_ECS_CLUSTER"
ENV_CONTAINER = "MATOMO_ECS_CONTAINER"
ENV_SSM_COMMAND = "MATOMO_SSM_COMMAND"

RUNNERS = ("none", "local", "ssm")
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_CLUSTER = "platform-web"  # GDS's cluster name
DEFAULT_CONTAINER = "matomo"

# Placeholders: {idsite}, {first_day}, {last_day} (and {container} in the SSM script). Only these
# exact tokens are replaced, so a template may hold other braces (shell, ``python -c`` code).
# --ignore-warn: on Matomo 4.12.3 with PHP 8.2, deprecation notices make ``console`` exit 1 after
# a successful archive (seen on the real server). A real failure still shows: the reports check
# that follows every archive compares the reports with the ledger.
DEFAULT_LOCAL_COMMAND = (
    "php console --ignore-warn core:archive --force-idsites={idsite} --force-date-range={first_day},{last_day}"
)
# One shell line per SSM ``commands`` entry. The ECS agent labels each container with its
# task-definition name; the name filter is the fallback for containers started otherwise
# (``docker ps --filter name=`` matches substrings, so the label is tried first).
DEFAULT_SSM_COMMAND = "\n".join((
    "set -e",
    "CONTAINER=$(docker ps -q --filter label=com.amazonaws.ecs.container-name={container} | head -n 1)",
    'if [ -z "$CONTAINER" ]; then CONTAINER=$(docker ps -q --filter name={container} | head -n 1); fi',
    'if [ -z "$CONTAINER" ]; then echo "no running docker container named {container}" >&2; exit 1; fi',
    'docker exec -u www-data "$CONTAINER" ./console --ignore-warn core:archive --force-idsites={idsite} '
    "--force-date-range={first_day},{last_day}",
))

SSM_DOCUMENT = "AWS-RunShellScript"
SSM_RUNNING = frozenset({"Pending", "InProgress", "Delayed"})
SSM_TIMEOUT_MARGIN_S = 300.0  # how much longer than executionTimeout we wait for SSM's verdict

TAIL_LINES = 20
TAIL_CHARS = 4000
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
# Values that must never be echoed: a token or password passed on a command line.
_SECRET = re.compile(
    r"(?i)((?:token[_-]?auth|token|password|passwd|secret)\s*[=:]\s*|--(?:token[_-]?auth|password)\s+)"
    r"(\"[^\"]*\"|'[^']*'|\S+)"
)


class ArchiveError(IngestError):
    """Invalidating or archiving Matomo reports failed (one line: what failed and what to do)."""


@dataclass(frozen=True)
class RunnerResult:
    """What an archive run did. ``command`` and ``output_tail`` are free of secrets."""

    runner: str  # "local" | "ssm" | "none"
    command: str
    exit_status: int | None  # None when nothing ran (NoRunner) or the remote gave no code
    output_tail: str
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


# --- invalidation ----------------------------------------------------------------------------------

def invalidate_days(api, idsite: int, days: Iterable[str | dt.date]) -> dict | None:
    """Invalidate the reports of ``days`` (every period holding them) of site ``idsite``.

    No ``period`` is sent, so Matomo invalidates the day, week, month and year of each date: the
    imported hits change all of them. Returns Matomo's answer, or None when ``days`` is empty.
    """
    idsite = _check_site(idsite)
    dates = sorted({_check_day(d, "day to invalidate") for d in days})
    if not dates:
        return None
    try:
        return api.call("CoreAdminHome.invalidateArchivedReports", idSites=idsite, dates=",".join(dates))
    except MatomoApiError as exc:
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
        raise ArchiveError(
            f"Matomo did not invalidate the reports of site {idsite} for {span}: {exc} — check "
            "that MATOMO_API_TOKEN has admin access to the site"
        ) from None


# --- runners ---------------------------------------------------------------------------------------

class NoRunner:
    """Archives nothing: Matomo's own ``core:archive`` cron picks up the invalidated days."""

    name = "none"

    def run(self, idsite: int, first_day: str | dt.date, last_day: str | dt.date) -> RunnerResult:
        idsite, first, last = _check_range(idsite, first_day, last_day)
        return RunnerResult(
            runner=self.name, command="", exit_status=None,
            output_tail="not archived here: Matomo's own core:archive cron computes the reports",
            seconds=0.0, detail={"idsite": idsite, "first_day": first, "last_day": last},
        )


class LocalRunner:
    """Runs a local command (default: ``php console --ignore-warn core:archive`` in Matomo's directory).

    The template is split with :func:`shlex.split` and run without a shell, the placeholders are
    substituted per argument, so a value can never be re-parsed as shell syntax.
    """

    name = "local"

    def __init__(self, command_template: str = DEFAULT_LOCAL_COMMAND, *, cwd: str | os.PathLike | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, env: Mapping[str, str] | None = None) -> None:
        try:
            self.argv_template = shlex.split(command_template)
        except ValueError as exc:
            raise ConfigError(f"{ENV_COMMAND} is not a valid command line ({exc}); quote it as in a shell") from None
        if not self.argv_template:
            raise ConfigError(f"{ENV_COMMAND} is empty; set it to the archive command, e.g. {DEFAULT_LOCAL_COMMAND!r}")
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.timeout_s = _positive(timeout_s, "timeout_s")
        self.env = dict(env) if env is not None else None

    def run(self, idsite: int, first_day: str | dt.date, last_day: str | dt.date) -> RunnerResult:
        idsite, first, last = _check_range(idsite, first_day, last_day)
        values = {"{idsite}": str(idsite), "{first_day}": first, "{last_day}": last}
        argv = [_substitute(arg, values) for arg in self.argv_template]
        shown = _redact(shlex.join(argv))
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise ArchiveError(f"{ENV_CWD}={self.cwd} is not a directory; set it to Matomo's directory (the one holding ./console)")
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, errors="replace", timeout=self.timeout_s, check=False,
            )
        except FileNotFoundError:
            raise ArchiveError(f"cannot run {argv[0]!r}: not found; fix {ENV_COMMAND} or {ENV_CWD}") from None
        except PermissionError:
            raise ArchiveError(f"cannot run {argv[0]!r}: permission denied; fix {ENV_COMMAND}") from None
        except subprocess.TimeoutExpired:
            raise ArchiveError(
                f"archiving site {idsite} {first}..{last} did not finish within {self.timeout_s:g} s and was "
                f"killed; raise {ENV_TIMEOUT} or archive fewer days at once"
            ) from None
        duration = time.monotonic() - started
        if done.returncode != 0:
            reason = _last_line(done.stderr) or _last_line(done.stdout) or "no output"
            # The program's name only: the full command line is long and the result carries it.
            raise ArchiveError(
                f"archive command {os.path.basename(argv[0])!r} for site {idsite} {first}..{last} exited "
                f"with status {done.returncode}: {_redact(reason)} — fix the cause, then re-run matomo_archive for "
                f"{first}..{last}"
            )
        return RunnerResult(
            runner=self.name, command=shown, exit_status=done.returncode,
            output_tail=_tail(done.stdout + ("\n" + done.stderr if done.stderr.strip() else "")),
            seconds=duration,
            detail={"idsite": idsite, "first_day": first, "last_day": last, "cwd": self.cwd},
        )


class SsmRunner:
    """Runs ``core:archive`` in the Matomo container of an ECS cluster through SSM Run Command.

    Finds the EC2 instance whose running task has a container named ``container`` (as GDS did),
    sends the shell script with the ``AWS-RunShellScript`` document and polls the invocation until
    it ends. Clients and ``sleep`` are injectable; the default clients use boto3's standard
    credential chain with botocore's ``adaptive`` retry mode.
    """

    name = "ssm"

    def __init__(self, *, cluster: str = DEFAULT_CLUSTER, container: str = DEFAULT_CONTAINER,
                 command_template: str = DEFAULT_SSM_COMMAND, region: str | None = None,
                 execution_timeout_s: float = DEFAULT_TIMEOUT_S, poll_interval_s: float = 5.0,
                 timeout_s: float | None = None, ecs_client=None, ssm_client=None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not cluster or not cluster.strip():
            raise ConfigError(f"{ENV_CLUSTER} is empty; set it to the ECS cluster running Matomo (default {DEFAULT_CLUSTER})")
        if not _CONTAINER_NAME.match(container or ""):
            # The name goes into a shell script: only docker's own name characters are allowed.
            raise ConfigError(f"{ENV_CONTAINER}={container!r} is not a container name; use letters, digits, '_', '.', '-'")
        lines = [line for line in (command_template or "").splitlines() if line.strip()]
        if not lines:
            raise ConfigError(f"{ENV_SSM_COMMAND} is empty; unset it to use the default docker exec script")
        self.cluster = cluster.strip()
        self.container = container
        self.command_lines = lines
        self.region = region or None
        self.execution_timeout_s = int(_positive(execution_timeout_s, "execution_timeout_s"))
        self.poll_interval_s = _positive(poll_interval_s, "poll_interval_s")
        self.timeout_s = (_positive(timeout_s, "timeout_s") if timeout_s is not None
                          else self.execution_timeout_s + SSM_TIMEOUT_MARGIN_S)
        self._ecs = ecs_client
        self._ssm = ssm_client
        self._sleep = sleep

    # The clients are made on first use, so building a runner from env needs no AWS access.
    def _client(self, service: str):
        import boto3  # imported late: only the SSM runner needs AWS
        from botocore.config import Config
        from botocore.exceptions import NoRegionError

        try:
            return boto3.client(service, region_name=self.region,
                                config=Config(retries={"mode": "adaptive", "max_attempts": 10}))
        except NoRegionError:
            raise ConfigError("no AWS region configured; set AWS_REGION (or AWS_DEFAULT_REGION)") from None

    @property
    def ecs(self):
        if self._ecs is None:
            self._ecs = self._client("ecs")
        return self._ecs

    @property
    def ssm(self):
        if self._ssm is None:
            self._ssm = self._client("ssm")
        return self._ssm

    def run(self, idsite: int, first_day: str | dt.date, last_day: str | dt.date) -> RunnerResult:
        idsite, first, last = _check_range(idsite, first_day, last_day)
        started = time.monotonic()
        found = self.find_instance()
        values = {"{idsite}": str(idsite), "{first_day}": first, "{last_day}": last,
                  "{container}": self.container}
        commands = [_substitute(line, values) for line in self.command_lines]
        shown = _redact("\n".join(commands))
        instance = found["ec2_instance_id"]
        sent = self._aws("SSM SendCommand", self.ssm.send_command,
                         InstanceIds=[instance], DocumentName=SSM_DOCUMENT,
                         Comment=f"analytics_ingest core:archive site {idsite} {first}..{last}"[:100],
                         Parameters={"commands": commands,
                                     "executionTimeout": [str(self.execution_timeout_s)]})
        command_id = sent["Command"]["CommandId"]
        detail = {**found, "command_id": command_id, "idsite": idsite, "first_day": first, "last_day": last}
        invocation = self._wait(command_id, instance, started)
        status = invocation.get("Status", "")
        detail["status"] = status
        code = invocation.get("ResponseCode")
        code = code if isinstance(code, int) and code >= 0 else None  # -1 = no code yet
        if status != "Success":
            reason = (_last_line(_redact(invocation.get("StandardErrorContent") or ""))
                      or invocation.get("StatusDetails") or "no error output")
            raise ArchiveError(
                f"SSM archive command {command_id} on {instance} ended {status}"
                f"{f' (exit status {code})' if code is not None else ''}: {reason} — see the "
                "command's output in the SSM console"
            )
        output = _redact((invocation.get("StandardOutputContent") or "")
                         + "\n" + (invocation.get("StandardErrorContent") or ""))
        return RunnerResult(runner=self.name, command=shown, exit_status=code,
                            output_tail=_tail(output), seconds=time.monotonic() - started,
                            detail=detail)

    def find_instance(self) -> dict[str, str]:
        """The EC2 instance running the Matomo container: ``{ec2_instance_id, container_instance_arn, task_arn, cluster}``."""
        # Asked first so that a wrong cluster name is told apart from an empty cluster.
        clusters = self._aws("ECS DescribeClusters", self.ecs.describe_clusters, clusters=[self.cluster])
        if not any(c.get("status") == "ACTIVE" for c in clusters.get("clusters", [])):
            raise ArchiveError(f"ECS cluster {self.cluster!r} not found (or not active) in the AWS region in use; "
                               f"check {ENV_CLUSTER} and AWS_REGION")
        pages = self.ecs.get_paginator("list_container_instances").paginate(cluster=self.cluster)
        arns: list[str] = []
        for page in self._aws_iter("ECS ListContainerInstances", pages):
            arns += page.get("containerInstanceArns", [])
        for arn in arns:
            task_arns: list[str] = []
            pages = self.ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster, containerInstance=arn, desiredStatus="RUNNING")
            for page in self._aws_iter("ECS ListTasks", pages):
                task_arns += page.get("taskArns", [])
            for start in range(0, len(task_arns), 100):  # DescribeTasks takes at most 100
                tasks = self._aws("ECS DescribeTasks", self.ecs.describe_tasks,
                                  cluster=self.cluster, tasks=task_arns[start:start + 100])
                for task in tasks.get("tasks", []):
                    if any(c.get("name") == self.container for c in task.get("containers", [])):
                        return self._instance_of(task)
        where = f"{len(arns)} container instance(s)" if arns else "no container instances"
        raise ArchiveError(
            f"no running ECS task with a container named {self.container!r} in cluster "
            f"{self.cluster!r} ({where}); check {ENV_CLUSTER}, {ENV_CONTAINER} and AWS_REGION"
        )

    def _instance_of(self, task: dict) -> dict[str, str]:
        arn = task.get("containerInstanceArn")
        if not arn:  # Fargate: no host to run docker exec on
            raise ArchiveError(
                f"the {self.container!r} task in cluster {self.cluster!r} runs without an EC2 container "
                "instance (Fargate?); SSM cannot reach it — use MATOMO_ARCHIVE_RUNNER=local or none"
            )
        described = self._aws("ECS DescribeContainerInstances", self.ecs.describe_container_instances,
                              cluster=self.cluster, containerInstances=[arn])
        for item in described.get("containerInstances", []):
            if item.get("ec2InstanceId"):
                return {"cluster": self.cluster, "container_instance_arn": arn,
                        "task_arn": task.get("taskArn", ""), "ec2_instance_id": item["ec2InstanceId"]}
        raise ArchiveError(f"ECS did not say which EC2 instance {arn} is; check the cluster {self.cluster!r}")

    def _wait(self, command_id: str, instance: str, started: float) -> dict:
        """Poll the invocation until a terminal status; cancel it when we stop waiting."""
        from botocore.exceptions import ClientError

        slept = 0.0
        while True:
            # Wait first: an invocation is not visible right after SendCommand.
            self._sleep(self.poll_interval_s)
            # The sum of requested sleeps counts too, so an injected no-op sleep still ends.
            slept += self.poll_interval_s
            try:
                invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
            except ClientError as exc:
                if _code(exc) != "InvocationDoesNotExist":
                    raise _aws_error("SSM GetCommandInvocation", exc) from None
                invocation = None
            except Exception as exc:  # noqa: BLE001 - botocore's connection errors
                raise _aws_error("SSM GetCommandInvocation", exc) from None
            if invocation is not None and invocation.get("Status") not in SSM_RUNNING:
                return invocation
            if max(slept, time.monotonic() - started) >= self.timeout_s:
                break
        try:  # don't leave an archiver running that the next run would overlap with
            self.ssm.cancel_command(CommandId=command_id, InstanceIds=[instance])
        except Exception:  # noqa: BLE001 - best effort; the error below says what happened
            pass
        raise ArchiveError(
            f"SSM archive command {command_id} on {instance} did not finish within {self.timeout_s:g} s "
            f"and was cancelled; raise {ENV_TIMEOUT} or archive fewer days at once"
        )

    @staticmethod
    def _aws(what: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every botocore error becomes one line
            raise _aws_error(what, exc) from None

    @staticmethod
    def _aws_iter(what: str, pages):
        try:
            yield from pages
        except Exception as exc:  # noqa: BLE001
            raise _aws_error(what, exc) from None


# --- configuration ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArchiveSettings:
    """Which runner archives, and its settings (``MATOMO_ARCHIVE_*``, ``MATOMO_ECS_*``, ``MATOMO_SSM_COMMAND``)."""

    kind: str = "none"  # one of RUNNERS
    timeout_s: float = DEFAULT_TIMEOUT_S
    command: str = DEFAULT_LOCAL_COMMAND  # local
    cwd: str | None = None  # local: Matomo's directory
    cluster: str = DEFAULT_CLUSTER  # ssm
    container: str = DEFAULT_CONTAINER  # ssm
    ssm_command: str = DEFAULT_SSM_COMMAND  # ssm
    region: str | None = None  # ssm: AWS_REGION, else AWS_DEFAULT_REGION

    @property
    def archives_itself(self) -> bool:
        """False with ``none``: Matomo's own cron archives later."""
        return self.kind != "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ArchiveSettings:
        """The settings chosen by ``MATOMO_ARCHIVE_RUNNER`` (``none`` by default); see the module docs.
        With ``none`` the other variables are not read (nor rejected)."""
        kind = (env.get(ENV_RUNNER) or "none").strip().lower()
        if kind not in RUNNERS:
            raise ConfigError(f"{ENV_RUNNER}={env.get(ENV_RUNNER)!r} is not known; use one of: {', '.join(RUNNERS)}")
        if kind == "none":
            return cls()
        raw_timeout = (env.get(ENV_TIMEOUT) or "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            timeout = -1.0
        if not (0 < timeout < float("inf")):
            raise ConfigError(f"{ENV_TIMEOUT}={raw_timeout!r} is not a positive number of seconds; e.g. {DEFAULT_TIMEOUT_S:g}")
        if kind == "local":
            cwd = (env.get(ENV_CWD) or "").strip() or None
            if cwd is not None and not os.path.isdir(cwd):
                raise ConfigError(f"{ENV_CWD}={cwd} is not a directory; set it to Matomo's directory (the one holding ./console)")
            return cls(kind=kind, timeout_s=timeout, command=env.get(ENV_COMMAND) or DEFAULT_LOCAL_COMMAND, cwd=cwd)
        return cls(
            kind=kind,
            timeout_s=timeout,
            cluster=(env.get(ENV_CLUSTER) or DEFAULT_CLUSTER).strip(),
            container=(env.get(ENV_CONTAINER) or DEFAULT_CONTAINER).strip(),
            ssm_command=env.get(ENV_SSM_COMMAND) or DEFAULT_SSM_COMMAND,
            region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip() or None,
        )

    def runner(self):
        """The runner these settings describe (a bad command or container name: one-line ConfigError)."""
        if self.kind == "local":
            return LocalRunner(self.command, cwd=self.cwd, timeout_s=self.timeout_s)
        if self.kind == "ssm":
            return SsmRunner(cluster=self.cluster, container=self.container, command_template=self.ssm_command,
                             region=self.region, execution_timeout_s=self.timeout_s)
        return NoRunner()


class LazyRunner:
    """A runner built when first used, so that a day needing no archive never reads (nor rejects) the
    runner's settings: ``LazyRunner(lambda: ArchiveSettings.from_env(environ).runner())``."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build, self._runner = build, None

    def run(self, *args, **kwargs):
        if self._runner is None:
            self._runner = self._build()
        return self._runner.run(*args, **kwargs)


# --- helpers ---------------------------------------------------------------------------------------

def _check_site(idsite) -> int:
    try:
        value = int(idsite)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or isinstance(idsite, bool):
        raise InputError(f"Matomo site id must be a positive integer, got {idsite!r}")
    return value


def _check_day(day, what: str) -> str:
    if isinstance(day, dt.datetime):  # a datetime is a date too: refuse the ambiguity
        raise InputError(f"{what} must be a date (YYYY-MM-DD), got a datetime {day!r}")
    if isinstance(day, dt.date):
        return day.isoformat()
    try:
        return dt.date.fromisoformat(str(day).strip()).isoformat()
    except ValueError:
        raise InputError(f"{what} must be YYYY-MM-DD, got {day!r}") from None


def _check_range(idsite, first_day, last_day) -> tuple[int, str, str]:
    first, last = _check_day(first_day, "first day"), _check_day(last_day, "last day")
    if last < first:
        raise InputError(f"archive range {first}..{last} ends before it starts; swap the days")
    return _check_site(idsite), first, last


def _positive(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not (0 < number < float("inf")):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return number


def _substitute(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _tail(text: str) -> str:
    lines = [line.rstrip() for line in (text or "").strip().splitlines()]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_CHARS:]


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _aws_error(what: str, exc: Exception) -> ArchiveError:
    """One line for a botocore error; AWS messages carry no credentials."""
    code = _code(exc)
    if code:
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).strip()
        hint = {
            "ClusterNotFoundException": f"check {ENV_CLUSTER} and AWS_REGION",
            "AccessDeniedException": "grant the role ecs:List*/Describe* and ssm:SendCommand/GetCommandInvocation",
            "InvalidInstanceId": "the instance is not managed by SSM (agent or instance profile missing)",
        }.get(code, "check the AWS credentials, region and permissions")
        text = f"{what} failed: {code}: {message}" if message else f"{what} failed: {code}"
        return ArchiveError(f"{' '.join(text.split())} — {hint}")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ArchiveError(f"{what}: no AWS credentials found; configure the standard credential chain (env, profile, role)")
    if name == "NoRegionError":
        return ArchiveError(f"{what}: no AWS region configured; set AWS_REGION")
    return ArchiveError(f"{what} failed: {name}: {' '.join(str(exc).split())[:200]}")


__all__ = [
    "ArchiveError", "RunnerResult", "NoRunner", "LocalRunner", "SsmRunner", "invalidate_days",
    "ArchiveSettings", "LazyRunner", "DEFAULT_LOCAL_COMMAND", "DEFAULT_SSM_COMMAND", "RUNNERS",
]
