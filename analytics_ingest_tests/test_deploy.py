"""The production files: instance configs valid (on the real PostgreSQL), docker-compose
consistent with them and with .env.example, and the production topology — code server,
webserver and daemon as processes on PostgreSQL storage — taking a dropped log to Loaded."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest_tests.db_fixtures import _postgresql_url
from analytics_ingest_tests.helpers import make_log
from analytics_ingest_tests.processes import free_port, http_ok, processes, wait_for
from analytics_ingest_tests.services import PG_HOST, PG_PORT

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def pg_db():
    """Name of a fresh database on the machine's PostgreSQL (skips / fails as services.py says)."""
    gen = _postgresql_url()
    url = next(gen)
    yield url.rsplit("/", 1)[1]
    for _ in gen:
        pass


def _pg_env(db: str) -> dict:
    return {"DAGSTER_PG_HOST": PG_HOST, "DAGSTER_PG_PORT": str(PG_PORT), "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": db}


def test_production_instance_runs_on_postgres_with_the_concurrency_limits(pg_db, tmp_path, monkeypatch):
    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    for key, value in _pg_env(pg_db).items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2  # the "matomo" pool
        assert instance.get_runs() == []


def test_the_ecs_scale_out_variant_is_valid_config(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_aws.ecs import EcsRunLauncher

    shutil.copy(ROOT / "deploy" / "dagster.ecs.yaml", tmp_path / "dagster.yaml")
    for key, value in _pg_env("dagster").items():
        monkeypatch.setenv(key, value)
    config, _ = dagster_instance_config(str(tmp_path))  # validates the whole instance schema
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    arns = {name: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name.lower()}"
            for name in ("DAGSTER_PG_PASSWORD", "ANALYTICS_INGEST_LEDGER_URL", "MATOMO_API_TOKEN")}
    for name, arn in arns.items():
        monkeypatch.setenv(f"{name}_SECRET_ARN", arn)
    result = process_config(EcsRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    # secrets reach the run task as ECS secrets (by ARN), never as plain env vars in its definition
    secrets = {s["name"]: s["valueFrom"] for s in result.value["secrets"]}
    assert secrets == arns
    assert not set(arns) & set(result.value["env_vars"])


def test_the_kubernetes_variant_is_valid_config(tmp_path, monkeypatch):
    """Issue #14: a Kubernetes path (dagster-k8s K8sRunLauncher) for users who outgrow one host."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    dagster_k8s = pytest.importorskip("dagster_k8s", reason="dagster-k8s is a dev extra (pip install -e '.[dev]')")
    shutil.copy(ROOT / "deploy" / "dagster.k8s.yaml", tmp_path / "dagster.yaml")
    for key, value in _pg_env("dagster").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", "analytics")
    config, _ = dagster_instance_config(str(tmp_path))  # the whole instance schema
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(dagster_k8s.K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    # secrets come from a Kubernetes Secret, never as values in the Job spec
    assert result.value["env_secrets"] == ["analytics-ingest-secrets"]
    assert not {"MATOMO_API_TOKEN", "DAGSTER_PG_PASSWORD"} & set(result.value.get("env_vars") or [])
    assert config["concurrency"] == yaml.safe_load((ROOT / "deploy" / "dagster.ecs.yaml").read_text())["concurrency"]


def _env_refs(text: str) -> set[str]:
    return set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)\}", text))  # $${X} is compose escaping


def test_docker_compose_is_consistent_with_its_files_and_env():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert (ROOT / services["user_code"]["build"] / "Dockerfile").exists()
    for service in services.values():  # every bind-mounted project file exists
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "/opt/dagster/dagster_home/workspace.yaml" in services[name]["entrypoint"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "deploy/dagster.yaml deploy/workspace.yaml ${DAGSTER_HOME}/" in dockerfile
    assert "--location-name\", \"analytics_ingest\"" in dockerfile
    # the defs autoloader finds the project by the pyproject.toml beside the package: editable install
    assert "COPY pyproject.toml" in dockerfile and "pip install -e ." in dockerfile
    # every ${VAR} compose reads is documented in .env.example
    example = {line.split("=", 1)[0].lstrip("# ").strip() for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line}
    assert _env_refs(text) - example == set()
    # every {env: VAR} of the production instance reaches the services that load it
    needed = set(re.findall(r"\{env: ([A-Z0-9_]+)\}", (ROOT / "deploy" / "dagster.yaml").read_text()))
    for name in ("user_code", "webserver", "daemon"):
        assert needed <= set(services[name]["environment"]), name
    assert needed <= example
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["location_name"] == "analytics_ingest"


@pytest.mark.skipif(not (BIN / "dagster-daemon").exists(), reason="dagster-daemon is not installed")
def test_production_topology_takes_a_dropped_log_to_loaded(pg_db, tmp_path):
    home, dagster_home, logs = tmp_path / "home", tmp_path / "dagster_home", tmp_path / "logs"
    dagster_home.mkdir()
    logs.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    grpc_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=grpc_port)
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: logs,\n"
        "     file_pattern: 'access.log*', timezone: UTC, start_date: 2024-03-01}\n"
    )
    ledger_url = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{pg_db}"  # the ledger on the same server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATOMO_", "ANALYTICS_INGEST_", "DAGSTER_"))}
    env.update(_pg_env(pg_db), DAGSTER_HOME=str(dagster_home), ANALYTICS_INGEST_SITES=str(sites),
               ANALYTICS_INGEST_HOME=str(home), ANALYTICS_INGEST_LEDGER_URL=ledger_url)
    outputs = [tmp_path / "code_server.log", tmp_path / "webserver.log", tmp_path / "daemon.log"]
    commands = [
        [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
         "-m", "analytics_ingest.definitions", "--location-name", "analytics_ingest"],
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(tmp_path / "workspace.yaml")],
        [str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")],
    ]
    with processes() as start:
        start(commands[0], outputs[0], tmp_path, env)

        def grpc_up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", grpc_port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(grpc_up, 300, "the code server did not listen", outputs)
        for command, out in zip(commands[1:], outputs[1:]):
            start(command, out, tmp_path, env)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{web_port}/server_info"), 300, "the webserver did not answer",
                 outputs)
        staging = tmp_path / "staging.log"
        manifest = make_log(staging, 400, seed=9, date="2024-03-14", tz="+0000")
        shutil.move(staging, logs / "access.log.2024-03-14")

        def loaded() -> bool:
            try:
                ledger = open_ledger(load_settings(home=home, ledger_url=ledger_url, environ={}))
            except Exception:  # noqa: BLE001 - not created yet
                return False
            try:
                return ledger.day_status(1, dt.date(2024, 3, 14)) == "loaded"
            finally:
                ledger.close()

        wait_for(loaded, 480, "the day did not become Loaded", outputs)
        sent = (home / "outbox" / "site-1.jsonl").read_text().splitlines()
        assert len(sent) == manifest["tracked"]


def test_a_copy_of_the_package_without_its_project_says_how_to_install_it(tmp_path):
    """A non-editable install (site-packages) has no pyproject.toml beside the package, which the
    defs autoloader needs: one line that says what to do, not Dagster's internal error."""
    import subprocess

    shutil.copytree(ROOT / "analytics_ingest", tmp_path / "site" / "analytics_ingest",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = "from analytics_ingest.definitions import defs\ndefs()"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith(
        "has no pyproject.toml: install the project editable from its source tree (pip install -e .) so Dagster can "
        "find its defs")
