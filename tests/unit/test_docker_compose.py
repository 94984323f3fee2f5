"""docker-compose.yaml and docker/Dockerfile, checked as files (no Docker engine needed).

The environment check scans our code for the variables it reads, so a new ``os.environ`` read or a new
``*_CONN_ID`` fails here until the compose file sets it (or the read is classified as local tooling below).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
DOCKERFILE = PROJECT_DIR / "docker" / "Dockerfile"
REQUIREMENTS = PROJECT_DIR / "requirements.txt"

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
# Long-running Airflow components: where DAG files are parsed, tasks and triggers run.
AIRFLOW_RUNTIME_SERVICES = AIRFLOW_SERVICES - {"airflow-init"}
ONE_SHOT_SERVICES = {"airflow-init", "birthday-migrate"}
EXPECTED_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "birthday-migrate", "receiver"}
# Components that run our tasks (or schedule them): they start only after our migrations.
TASK_SERVICES = {"airflow-scheduler", "airflow-triggerer", "airflow-worker"}
# Mounted as a platform syncs them; the package (include/) is installed in the image instead.
CODE_DIRS = ("dags", "plugins")
# Services that run our development tools (python -m tools.X) from a mounted ./tools.
TOOL_SERVICES = {"birthday-migrate", "receiver"}
SCANNED_DIRS = ("dags", "include", "plugins", "tools")
IDS_MODULE = "include/birthday_pipeline/ids.py"

# Where the code that reads an environment variable runs under docker compose (longest prefix wins).
CONSUMERS: dict[str, set[str]] = {
    "dags/": AIRFLOW_RUNTIME_SERVICES,
    "include/": AIRFLOW_RUNTIME_SERVICES,
    "plugins/": AIRFLOW_RUNTIME_SERVICES,
    "tools/receiver.py": {"receiver"},
    # `python -m tools.dev migrate` (service birthday-migrate) finds its server through this module.
    "tools/local_postgres.py": {"birthday-migrate"},
}
# Reads done only by local tooling (`make run` on the host), which compose need not set, and why.
LOCAL_TOOLING_ONLY: dict[tuple[str, str], str] = {
    ("tools/dev.py", "PATH"): "make run puts the virtualenv's bin first for `airflow standalone`",
    ("tools/dev.py", "AIRFLOW_CONN_BIRTHDAY_DB"): (
        "make migrate migrates the database this connection names when it is set (compose's birthday-migrate "
        "creates its database from BIRTHDAY_POSTGRES_URL instead)"
    ),
    ("tools/matrix.py", "PATH"): "make test-matrix puts each set's virtualenv first for the tests it runs there",
    ("tools/compose_test.py", "CONTAINERS_CONF"): (
        "make compose-test sets it (a write the scan also sees) for the podman it runs on the host"
    ),
    ("tools/dev.py", "AIRFLOW_CONN_BIRTHDAY_WEBHOOK"): (
        "make run starts its local receiver unless this is set; the connection itself is required of the "
        "Airflow services through the DAGs' WEBHOOK_CONN"
    ),
}
# Connections the pipeline runs without, which compose therefore leaves unset, and why.
OPTIONAL_CONNECTIONS: dict[str, str] = {
    "AIRFLOW_CONN_BIRTHDAY_ALERTS": "without it no alerts are sent and nothing fails (docs/operations.md)",
}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|\$(?P<bare>\w+)")


def substitute(value: str, environment: dict[str, str] | None = None) -> str:
    """Compose's interpolation, the subset we use: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``."""
    environment = environment or {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        current = environment.get(name)
        if match.group("op") == ":-" and not current:
            return match.group("default")
        if match.group("op") == "-" and current is None:
            return match.group("default")
        return current or ""

    return _VARIABLE.sub(replace, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with variable defaults substituted (list or mapping form)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: substitute(str(value)) for key, value in raw.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source relative to the project, mode) of a service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = substitute(volume).split(":")
        if source.startswith((".", "/")):
            mounts[target] = (os.path.normpath(source), mode[0] if mode else "rw")
    return mounts


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def test_compose_file_parses(compose: dict[str, Any]) -> None:
    assert isinstance(compose, dict)
    assert isinstance(compose.get("services"), dict)


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert EXPECTED_SERVICES <= set(services), f"missing: {sorted(EXPECTED_SERVICES - set(services))}"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7.2")


def test_airflow_services_mount_only_dags_and_plugins(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(AIRFLOW_SERVICES):
        mounts = bind_mounts(services[name])
        for directory in CODE_DIRS:
            target = f"/opt/airflow/{directory}"
            assert target in mounts, f"{name} does not mount ./{directory} at {target}"
            assert mounts[target][0] == directory, f"{name} mounts {mounts[target][0]} at {target}"
        assert {source for source, _mode in mounts.values()} <= {*CODE_DIRS, "logs"}, name
        assert "PYTHONPATH" not in environment_of(services[name]), f"{name}: the package comes from the image"
    for name in sorted(TOOL_SERVICES):
        assert bind_mounts(services[name])["/opt/airflow/tools"] == ("tools", "ro"), name
        assert environment_of(services[name]).get("PYTHONPATH") == "/opt/airflow", name


def test_image_contains_the_package() -> None:
    """The image installs birthday_pipeline from the sources, without letting it change the lock's versions."""
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    copied = re.findall(r"^COPY\s+(.+?)\s+(\S+)\s*$", dockerfile, re.M)
    sources = {source for group, _dest in copied for source in group.split()}
    assert {"pyproject.toml", "include"} <= sources, sources
    installs = re.findall(r"^RUN\s+pip install\b(.*)$", dockerfile, re.M)
    assert any("--no-deps" in flags and "-r" not in flags for flags in installs), installs
    ignored = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {"!pyproject.toml", "!include/", "!requirements.txt"} <= set(ignored)


def test_bind_mount_sources_exist(services: dict[str, dict[str, Any]]) -> None:
    """A mount of a removed directory (say docker/postgres-init) would be created empty by Docker."""
    created_at_start = {"logs"}  # Airflow's task logs, git-ignored
    for name, service in services.items():
        for target, (source, _mode) in bind_mounts(service).items():
            if source not in created_at_start:
                assert (PROJECT_DIR / source).exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_image_is_the_airflow_version_of_the_lock() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+apache/airflow:(?P<version>\d+\.\d+\.\d+)-python\d+\.\d+\s*$", dockerfile, re.M)
    assert base, "docker/Dockerfile must start FROM apache/airflow:<version>-python<x.y>"
    pin = re.search(r"^apache-airflow==(?P<version>[^\s#;]+)", REQUIREMENTS.read_text(encoding="utf-8"), re.M)
    assert pin, "requirements.txt pins no apache-airflow=="
    assert base["version"] == pin["version"]
    assert re.search(r"^COPY\s+requirements\.txt\s+(?P<dest>\S+)\s*$", dockerfile, re.M)
    assert re.search(r"^RUN\s+pip install\b.*\s-r\s+\S*requirements\.txt\b", dockerfile, re.M), (
        "docker/Dockerfile must pip install -r requirements.txt"
    )


def test_services_run_the_built_image(services: dict[str, dict[str, Any]]) -> None:
    images = set()
    for name in sorted(AIRFLOW_SERVICES | {"birthday-migrate", "receiver"}):
        service = services[name]
        build = service.get("build")
        assert isinstance(build, dict), f"{name} is not built from docker/Dockerfile"
        assert (build.get("context"), build.get("dockerfile")) == (".", "docker/Dockerfile"), name
        assert service.get("image"), f"{name} has no image name"
        images.add(substitute(service["image"]))
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in environment_of(service), name
    assert len(images) == 1, f"one image for all: {images}"


def test_celery_executor_with_redis_broker(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(AIRFLOW_SERVICES):
        environment = environment_of(services[name])
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.fullmatch(r"redis://[^@]*@?redis:6379/\d+", environment["AIRFLOW__CELERY__BROKER_URL"]), name
        assert "@postgres" in environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
    worker = services["airflow-worker"]
    assert command_of(worker) == ["celery", "worker"]
    assert depends_on(worker).get("redis") == "service_healthy"


def test_examples_off_and_dags_unpaused(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(AIRFLOW_SERVICES):
        environment = environment_of(services[name])
        assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert environment["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"].lower() == "false", name


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    awaited_to_complete = {
        dependency
        for service in services.values()
        for dependency, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    assert awaited_to_complete == ONE_SHOT_SERVICES
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart", "no") == "no", f"one-shot {name} must not restart"
            continue
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_task_services_wait_for_our_migrations(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(TASK_SERVICES):
        conditions = depends_on(services[name])
        assert conditions.get("birthday-migrate") == "service_completed_successfully", name
        assert conditions.get("airflow-init") == "service_completed_successfully", name
    migrate = services["birthday-migrate"]
    assert command_of(migrate) == ["python", "-m", "tools.dev", "migrate"]
    assert environment_of(migrate)["BIRTHDAY_POSTGRES_URL"] == "postgresql://airflow:airflow@postgres:5432/postgres"
    assert depends_on(migrate).get("postgres") == "service_healthy"


def test_receiver_service(services: dict[str, dict[str, Any]]) -> None:
    receiver = services["receiver"]
    assert command_of(receiver) == ["python", "-m", "tools.receiver", "--host", "0.0.0.0", "--port", "8000"]
    assert any(str(port).split(":")[-2:] == ["8000", "8000"] for port in receiver.get("ports", []))
    assert depends_on(services["airflow-worker"]).get("receiver") == "service_healthy"


def test_connections_point_at_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(AIRFLOW_RUNTIME_SERVICES):
        environment = environment_of(services[name])
        database = json.loads(environment["AIRFLOW_CONN_BIRTHDAY_DB"])
        assert (database["conn_type"], database["host"], database["schema"]) == ("postgres", "postgres", "birthday")
        webhook = json.loads(environment["AIRFLOW_CONN_BIRTHDAY_WEBHOOK"])
        assert (webhook["conn_type"], webhook["host"]) == ("http", "http://receiver:8000")
        assert not webhook.get("login"), "a login makes the HTTP provider send the password as Basic auth"


def test_webhook_secret_is_the_same_for_signer_and_receiver(services: dict[str, dict[str, Any]]) -> None:
    secret = environment_of(services["receiver"])["BIRTHDAY_WEBHOOK_SECRET"]
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    for name in sorted(AIRFLOW_RUNTIME_SERVICES):
        webhook = json.loads(environment_of(services[name])["AIRFLOW_CONN_BIRTHDAY_WEBHOOK"])
        assert webhook["password"] == secret, name
    # ... and from one variable, so an override in .env changes both.
    overridden = {"BIRTHDAY_WEBHOOK_SECRET": "whsec_b3ZlcnJpZGRlbg=="}
    receiver_value = services["receiver"]["environment"]["BIRTHDAY_WEBHOOK_SECRET"]
    conn_value = services["airflow-worker"]["environment"]["AIRFLOW_CONN_BIRTHDAY_WEBHOOK"]
    assert substitute(receiver_value, overridden) == json.loads(substitute(conn_value, overridden))["password"]


# --- the environment our code reads -------------------------------------------------------------------


def _is_os_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
            and node.value.id == "os") or (isinstance(node, ast.Name) and node.id == "environ")


def _string_constants(tree: ast.Module) -> dict[str, str]:
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants[target.id] = value.value
    return constants


def environment_reads(tree: ast.Module) -> set[str]:
    """Names read through ``os.environ[...]``, ``os.environ.get(...)``, ``... in os.environ`` and
    ``os.getenv(...)``, given as a string literal or a module-level string constant."""
    constants = _string_constants(tree)

    def resolve(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    keys: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            keys.append(node.slice)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_os_environ(func.value):
                keys.append(node.args[0])
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name)
                  and func.value.id == "os") or (isinstance(func, ast.Name) and func.id == "getenv"):
                keys.append(node.args[0])
        elif isinstance(node, ast.Compare):
            for operator, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(operator, ast.In | ast.NotIn) and _is_os_environ(right):
                    keys.append(node.left)
    return {name for name in map(resolve, keys) if name}


def connection_variables(tree: ast.Module) -> set[str]:
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}"
        for name, conn_id in _string_constants(tree).items()
        if name.endswith("_CONN")
    }


def scan() -> dict[tuple[str, str], set[str]]:
    """(file relative to the project, variable) -> the compose services that must set it."""
    required: dict[tuple[str, str], set[str]] = {}
    unclassified = []
    for directory in SCANNED_DIRS:
        for path in sorted((PROJECT_DIR / directory).rglob("*.py")):
            relative = path.relative_to(PROJECT_DIR).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            variables = environment_reads(tree)
            if relative == IDS_MODULE:  # the connection ids every DAG file imports
                variables |= connection_variables(tree)
            prefixes = sorted((prefix for prefix in CONSUMERS if relative.startswith(prefix)), key=len)
            for variable in sorted(variables):
                if (relative, variable) in LOCAL_TOOLING_ONLY or variable in OPTIONAL_CONNECTIONS:
                    continue
                if not prefixes:
                    unclassified.append(f"{relative}: {variable}")
                    continue
                required[(relative, variable)] = CONSUMERS[prefixes[-1]]
    assert not unclassified, (
        "environment variables read by code not classified in CONSUMERS or LOCAL_TOOLING_ONLY: "
        + ", ".join(unclassified)
    )
    return required


def test_scan_finds_what_our_code_reads() -> None:
    """The scanner itself: it must see the connections of the DAGs and the receiver's secret."""
    found = {variable for _, variable in scan()}
    assert {"AIRFLOW_CONN_BIRTHDAY_DB", "AIRFLOW_CONN_BIRTHDAY_WEBHOOK"} <= found
    tree = ast.parse(
        'import os\nNAME = "A"\nos.environ["B"]\nos.environ.get(NAME)\nos.getenv("C", "x")\n'
        '"D" in os.environ\nos.environ.setdefault("E", "1")\n'
    )
    assert environment_reads(tree) == {"A", "B", "C", "D"}


def test_every_variable_our_code_reads_is_set(services: dict[str, dict[str, Any]]) -> None:
    missing = [
        f"{variable} (read in {source}) in {service}"
        for (source, variable), consumers in sorted(scan().items())
        for service in sorted(consumers)
        if not environment_of(services[service]).get(variable)
    ]
    assert not missing, "not set: " + "; ".join(missing)


# --- as the official Airflow 3 compose file has them ---------------------------------------------------------


def test_apiserver_health_check_is_the_official_one(services: dict[str, dict[str, Any]]) -> None:
    """The official file checks /api/v2/monitor/health (metadatabase, scheduler, triggerer), not the version."""
    test = services["airflow-apiserver"]["healthcheck"]["test"]
    assert test == ["CMD", "curl", "--fail", "http://localhost:8080/api/v2/monitor/health"]


@pytest.mark.parametrize(("key", "override"), [
    ("AIRFLOW__CORE__FERNET_KEY", "FERNET_KEY"),
    ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API_AUTH__JWT_SECRET"),
])
def test_keys_are_set_shared_and_overridable_as_officially(services: dict[str, dict[str, Any]], key: str,
                                                           override: str) -> None:
    """Every component gets the same non-empty key, and .env overrides it under the official file's name."""
    raw_values = {services[name]["environment"][key] for name in AIRFLOW_SERVICES}
    assert len(raw_values) == 1, f"{key} differs between services: {raw_values}"
    raw = raw_values.pop()
    assert substitute(raw), f"{key} is empty without .env"
    assert substitute(raw, {override: "from-dot-env"}) == "from-dot-env"


def test_fernet_key_is_a_fernet_key(services: dict[str, dict[str, Any]]) -> None:
    from cryptography.fernet import Fernet  # noqa: PLC0415 - Airflow's own dependency, only this test needs it

    key = environment_of(services["airflow-scheduler"])["AIRFLOW__CORE__FERNET_KEY"]
    token = Fernet(key.encode()).encrypt(b"birthday_settings")
    assert Fernet(key.encode()).decrypt(token) == b"birthday_settings"


def test_two_workers_by_default(services: dict[str, dict[str, Any]]) -> None:
    """Two replicas, with the spec's default mode spelled out (podman-compose ignores replicas without it)."""
    assert services["airflow-worker"]["deploy"] == {"mode": "replicated", "replicas": 2}


@pytest.mark.parametrize("dot_env", [{}, {"AIRFLOW_UID": "1000"}])
def test_init_hands_logs_to_the_uid_the_services_run_as(services: dict[str, dict[str, Any]],
                                                        dot_env: dict[str, str]) -> None:
    script = substitute(services["airflow-init"]["command"][-1], dot_env)
    owner = re.search(r'^chown -R "(?P<owner>[^"]*)" /opt/airflow/logs$', script, re.M)
    assert owner, script
    for name in sorted(AIRFLOW_RUNTIME_SERVICES):
        assert substitute(services[name]["user"], dot_env) == owner["owner"], name
