"""docker-compose.yaml, Dockerfile, .env.example and the embedded environment agree.

Docker is not available where the tests run, so the Compose file is checked as data: against
the Compose Specification's JSON schema (vendored in tests/data/compose-spec/) and for the shape
of Airflow's official 3.x file.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from engagements.hooks.infra_repo import DeploymentSettings
from engagements.settings import Settings
from engagements.upkeep import UpkeepSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
TOPOLOGY_SCRIPT = ROOT / "scripts" / "topology.sh"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
PROJECT_MOUNTS = {"dags", "plugins", "include"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def common_env(compose: dict) -> dict[str, str]:
    return {k: str(v) for k, v in compose["x-airflow-common"]["environment"].items()}


def _airflow_pin() -> str:
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(r"^apache-airflow==(\S+)$", text, re.MULTILINE)
    assert match, "requirements.txt pins apache-airflow"
    return match[1]


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that the scripts or make would set."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "ENGAGEMENTS_", "MAKE", "MFLAGS"))
    }


def _lines(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def env_sh() -> dict[str, str]:
    """What `source scripts/env.sh` exports, from a clean environment."""
    result = subprocess.run(
        ["bash", "-c", 'source scripts/env.sh && env | grep -E "^(AIRFLOW_|ENGAGEMENTS_|PATH=)"'],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return _lines(result.stdout)


def _dotenv_example() -> dict[str, str]:
    """.env.example's assignments, including the commented-out examples."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            value = match[2]
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match[1]] = value
    return values


# --- the Compose file ------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # ... and the schema does reject what Compose would reject.
    broken = {"services": {"x": {"image": "a", "helthcheck": {}}}}
    assert not validator.is_valid(broken)


def test_all_services_are_present(services: dict) -> None:
    assert AIRFLOW_SERVICES | {"postgres", "redis"} <= set(services)


def test_airflow_services_merge_the_common_anchor() -> None:
    """Each Airflow service's `<<:` is the very node of `x-airflow-common` (the anchor)."""
    root = yaml.compose(COMPOSE_FILE.read_text())
    top = {key.value: value for key, value in root.value}
    common = top["x-airflow-common"]
    service_nodes = {key.value: value for key, value in top["services"].value}
    for name in AIRFLOW_SERVICES:
        merged = [value for key, value in service_nodes[name].value if key.value == "<<"]
        assert merged == [common], f"{name} does not use <<: *airflow-common"


def test_airflow_services_build_the_project_image(compose: dict, services: dict) -> None:
    common = compose["x-airflow-common"]
    assert common["build"] == "."
    assert common["image"] == f"${{AIRFLOW_IMAGE_NAME:-engagements-airflow:{_airflow_pin()}}}"
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == common["image"], name


def test_dockerfile_uses_the_pinned_airflow_and_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    version = _airflow_pin()
    assert re.search(rf"^FROM apache/airflow:{re.escape(version)}-python3\.11$", dockerfile, re.M)
    assert f'"apache-airflow=={version}"' in dockerfile
    assert re.search(
        r"^RUN pip install --no-cache-dir .*-r \S*requirements\.txt$", dockerfile, re.M
    )
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_FILE.read_text()


def test_backing_services_versions(services: dict) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis:7.2")


def test_every_long_running_service_has_a_healthcheck(services: dict) -> None:
    for name, service in services.items():
        if name == "airflow-init" or "profiles" in service:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/api/v2/version" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


def test_airflow_services_wait_for_init_and_the_databases(services: dict) -> None:
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_project_folders_are_mounted(compose: dict, services: dict) -> None:
    mounts = {}
    for volume in compose["x-airflow-common"]["volumes"]:
        source, target = volume.rsplit(":", 1)
        mounts[target] = source
    for folder in PROJECT_MOUNTS:
        assert mounts[f"/opt/airflow/{folder}"] == f"${{AIRFLOW_PROJ_DIR:-.}}/{folder}"
    for name in AIRFLOW_SERVICES:
        assert services[name]["volumes"] == compose["x-airflow-common"]["volumes"], name


def test_celery_executor_and_its_wiring(common_env: dict[str, str], services: dict) -> None:
    assert common_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in common_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert common_env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert common_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-apiserver"]["ports"] == ["${AIRFLOW_API_PORT:-8080}:8080"]


def test_simple_auth_manager_is_configured_and_exists(common_env: dict[str, str]) -> None:
    module, _, name = common_env["AIRFLOW__CORE__AUTH_MANAGER"].rpartition(".")
    assert name == "SimpleAuthManager"
    assert hasattr(importlib.import_module(module), name)
    # `user:role`: the password is not in this setting (see .env.example).
    assert common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == (
        "${AIRFLOW_ADMIN_USERNAME:-admin}:admin"
    )
    assert common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(
        "/opt/airflow/config/"
    )
    assert "FabAuthManager" not in COMPOSE_FILE.read_text()


def test_connections_and_variables_come_from_dotenv(compose: dict) -> None:
    assert compose["x-airflow-common"]["env_file"] == [{"path": ".env", "required": False}]


# --- names shared by Compose, .env.example, scripts/env.sh and the Makefile -------------


def _airflow_option_names(*texts: str) -> set[str]:
    return {
        name
        for text in texts
        for name in re.findall(r"\b(AIRFLOW__[A-Z0-9_]+__[A-Z0-9_]+)\b", text)
    }


def test_every_airflow_option_named_exists(env_sh: dict[str, str]) -> None:
    """Compose, the Makefile, env.sh and the local topology only name options Airflow has.

    The [celery] options come from apache-airflow-providers-celery (in requirements.txt).
    """
    from airflow.configuration import conf

    description = conf.configuration_description
    names = _airflow_option_names(
        COMPOSE_FILE.read_text(),
        (ROOT / "Makefile").read_text(),
        "\n".join(env_sh),
        TOPOLOGY_SCRIPT.read_text(),
    )
    assert {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"} <= names
    unknown = []
    for name in sorted(names):
        section, key = name.removeprefix("AIRFLOW__").lower().split("__", 1)
        if key not in description.get(section, {}).get("options", {}):
            unknown.append(name)
    assert unknown == []


def test_makefile_mirrors_env_sh(env_sh: dict[str, str]) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "print-env"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    from_make = _lines(result.stdout)
    makefile_exports = set(
        re.findall(
            r"^export\s+([A-Za-z_][A-Za-z0-9_]*)\s*[:?]?=", (ROOT / "Makefile").read_text(), re.M
        )
    )
    assert makefile_exports == set(env_sh)
    assert from_make == env_sh
    assert env_sh["PATH"].startswith(f"{ROOT}/.venv/bin:")


def test_env_sh_is_the_embedded_setup(env_sh: dict[str, str]) -> None:
    assert env_sh["AIRFLOW_HOME"] == str(ROOT / ".airflow")
    assert env_sh["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env_sh["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert env_sh["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env_sh["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env_sh["ENGAGEMENTS_ARTIFACTS_DIR"] == str(ROOT / "artifacts")
    assert env_sh["ENGAGEMENTS_STORE_PATH"] == str(ROOT / ".airflow" / "engagements.sqlite")
    smtp = json.loads(env_sh["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["conn_type"] == "smtp"
    assert (smtp["host"], smtp["port"]) == ("127.0.0.1", 8025)
    assert smtp["extra"]["disable_tls"] is smtp["extra"]["disable_ssl"] is True


def test_compose_uses_the_env_sh_names_for_shared_settings(
    common_env: dict[str, str], env_sh: dict[str, str]
) -> None:
    shared = set(common_env) & set(env_sh)
    assert {
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "ENGAGEMENTS_ARTIFACTS_DIR",
        "ENGAGEMENTS_STORE_PATH",
    } <= shared
    assert common_env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env_sh["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    settings = {f"ENGAGEMENTS_{f.name.upper()}" for f in fields(Settings)}
    for name in {n for n in set(common_env) | set(env_sh) if n.startswith("ENGAGEMENTS_")}:
        # Besides the settings: the outbox's own variables.
        assert name in settings or name.startswith("ENGAGEMENTS_OUTBOX_"), name


def test_dotenv_example_documents_every_setting_and_connection(env_sh: dict[str, str]) -> None:
    example = _dotenv_example()
    settings = {
        f"AIRFLOW_VAR_ENGAGEMENTS_{f.name.upper()}": f
        for cls in (Settings, DeploymentSettings, UpkeepSettings)
        for f in fields(cls)
    }
    documented = {name for name in example if name.startswith("AIRFLOW_VAR_ENGAGEMENTS_")}
    assert documented == set(settings)
    for name, field in settings.items():
        if field.default:  # the example shows the defaults
            assert example[name] == field.default, name

    assert "AIRFLOW_CONN_AIRTABLE_DEFAULT" in example
    smtp = json.loads(example["AIRFLOW_CONN_SMTP_DEFAULT"])
    embedded = json.loads(env_sh["AIRFLOW_CONN_SMTP_DEFAULT"])
    # Both deliver to an outbox on port 8025: make run's on loopback, compose's `outbox` service.
    assert smtp == {**embedded, "host": "outbox"}


def test_compose_outbox_serves_the_dotenv_smtp_connection(services: dict) -> None:
    """Its own service on the project network: every (scaled) worker reaches it by name."""
    outbox = services["outbox"]
    smtp = json.loads(_dotenv_example()["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert "network_mode" not in outbox
    assert smtp["host"] in ("outbox", outbox.get("hostname"))
    assert "--host 0.0.0.0 --allow-non-loopback" in outbox["command"]
    assert f"--port {smtp['port']}" in outbox["command"]
    assert "ports" not in outbox  # not published on the host
    for name, service in services.items():
        assert service.get("network_mode", "").removeprefix("service:") != "airflow-worker", name


def test_compose_substitutions_are_documented_in_dotenv_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used
    assert used <= set(_dotenv_example())


# --- the local topology (scripts/topology.sh) is the Compose deployment without Docker -----


@pytest.fixture(scope="module")
def topology_env() -> dict[str, str]:
    """What the components of `scripts/topology.sh` get, from a clean environment."""
    result = subprocess.run(
        ["bash", str(TOPOLOGY_SCRIPT), "env"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return _lines(result.stdout)


def test_topology_sets_every_compose_setting(
    common_env: dict[str, str], topology_env: dict[str, str]
) -> None:
    assert set(common_env) <= set(topology_env)
    for name in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__AUTH_MANAGER",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    ):
        compose = common_env[name].replace("${AIRFLOW_ADMIN_USERNAME:-admin}", "admin")
        assert topology_env[name] == compose, name


def test_topology_uses_the_same_databases_and_drivers(
    common_env: dict[str, str], topology_env: dict[str, str]
) -> None:
    def shape(url: str) -> tuple[str, str, str]:
        scheme, rest = url.split("://", 1)
        credentials, _, path = rest.rpartition("@")
        return scheme, credentials, path.split("/", 1)[-1]

    for name in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
    ):
        assert shape(topology_env[name]) == shape(common_env[name]), name
    # Loopback only, on the topology's own ports.
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL"):
        assert "@127.0.0.1:" in topology_env[name], name
    assert topology_env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert topology_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://127.0.0.1:")


def test_topology_has_its_own_home_and_the_project_folders(topology_env: dict[str, str]) -> None:
    assert topology_env["AIRFLOW_HOME"] == str(ROOT / ".topology" / "airflow")
    assert topology_env["AIRFLOW_CONFIG"] == str(ROOT / ".topology" / "airflow" / "airflow.cfg")
    assert topology_env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert topology_env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert topology_env["PYTHONPATH"].split(":")[0] == str(ROOT / "plugins")
    smtp = json.loads(topology_env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["host"] == "127.0.0.1"
    assert smtp["port"] != 8025  # its own outbox, not `make run`'s
