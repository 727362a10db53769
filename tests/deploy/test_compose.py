"""docker-compose.yml, .env.example, Dockerfile and .dockerignore agree with the code: worker queues are the
constants of workers/queues.py, every variable is a real setting and documented, no secret is written down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, SecretStr

from dispatcher.settings import Settings
from workers.queues import ALL_QUEUES, ROLE_QUEUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

APP_IMAGE = "smspoint-dispatcher:local"
#: Variables compose uses that are not Settings fields: the Redis and PostgreSQL containers' own.
INFRA_VARS = {"REDIS_PASSWORD", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
WORKERS = {"otp": "worker-otp", "bulk": "worker-bulk"}
BEAT_COMMAND = ["celery", "-A", "workers.app", "beat"]
SIMULATOR_COMMAND = ["smsdispatch", "simulator", "--host", "0.0.0.0", "--port", "8765"]
SIMULATOR_BASE_URL = "http://simulator:8765/api/v1"
LONG_RUNNING = {"redis", "postgres", "simulator", "worker-otp", "worker-bulk", "beat", "flower", "metrics",
                "api"}
API_COMMAND = ["smsdispatch", "api", "--host", "0.0.0.0", "--port", "8080"]
SECRET_NAME = re.compile(r"(_KEY|PASSWORD|SECRET|TOKEN|AUTH)$")
#: ${VAR}, ${VAR:-default}, ${VAR:?message}; $${...} is an escaped dollar, not a reference.
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
REQUIRED_REF = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}$")
URL_PASSWORD = re.compile(r"://[^/@:]*:([^@]*)@")
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


# ----------------------------------------------------------------------------- helpers


def settings_env_names() -> set[str]:
    """Every environment variable name Settings reads (field names and validation aliases, upper-cased)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


def canonical_env_name(name: str) -> str:
    """The name .env.example should use for a field: its first alias, else the field name upper-cased."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    return alias.upper() if isinstance(alias, str) else name.upper()


def field_of(env_name: str) -> str:
    """The Settings field an environment variable name sets."""
    for name in Settings.model_fields:
        if canonical_env_name(name) == env_name or name.upper() == env_name:
            return name
    raise KeyError(env_name)


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@dataclass
class EnvEntry:
    name: str
    value: str
    active: bool  #: False for a commented-out line (shows the default)
    line: int


def env_example() -> list[EnvEntry]:
    entries = []
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        match = ASSIGNMENT.match(line)
        if match:
            entries.append(EnvEntry(match.group(2), match.group(3), match.group(1) is None, number))
    return entries


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def option(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def literal_url_passwords(value: str) -> list[str]:
    """Passwords inside URLs in ``value`` that are not a required ${VAR:?} reference."""
    refs: list[str] = []

    def mask(match: re.Match[str]) -> str:
        refs.append(match.group(0))
        return f"REF{len(refs) - 1}X"

    literal = []
    for password in URL_PASSWORD.findall(VAR_REF.sub(mask, value)):
        ref = re.fullmatch(r"REF(\d+)X", password)
        if not ref or not REQUIRED_REF.match(refs[int(ref.group(1))]):
            literal.append(password)
    return literal


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if svc.get("image") == APP_IMAGE}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ----------------------------------------------------------------------------- services and queues


def test_all_services_present(services: dict[str, dict[str, Any]]) -> None:
    """The compose file defines every service of the system, and the one-shot migration."""
    assert LONG_RUNNING | {"migrate"} <= set(services)


@pytest.mark.parametrize("role", sorted(WORKERS))
def test_worker_queues_are_the_role_queues(services: dict[str, dict[str, Any]], role: str) -> None:
    """Each worker's -Q list is exactly ROLE_QUEUES[role] from workers/queues.py, with node name role@%h."""
    command = services[WORKERS[role]]["command"]
    assert command[:4] == ["celery", "-A", "workers.app", "worker"]
    assert tuple(option(command, "-Q").split(",")) == ROLE_QUEUES[role]
    assert option(command, "-n") == f"{role}@%h"


def test_workers_together_consume_every_queue(services: dict[str, dict[str, Any]]) -> None:
    """No declared queue is left without a consumer."""
    consumed = {q for svc in WORKERS.values() for q in option(services[svc]["command"], "-Q").split(",")}
    assert consumed == set(ALL_QUEUES)


@pytest.mark.parametrize("role", sorted(WORKERS))
def test_worker_healthcheck_pings_its_own_node(services: dict[str, dict[str, Any]], role: str) -> None:
    """A worker's health check asks its own Celery node (role@hostname) for a ping."""
    text = healthcheck_text(services[WORKERS[role]])
    assert "celery -A workers.app inspect ping" in text
    assert f"{role}@$$HOSTNAME" in text


def test_exactly_one_beat(services: dict[str, dict[str, Any]]) -> None:
    """Only the beat service runs celery beat, with one replica; no worker embeds a beat (-B)."""
    beats = [name for name, svc in services.items() if (svc.get("command") or [])[:4] == BEAT_COMMAND]
    assert beats == ["beat"]
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1
    for name, svc in services.items():
        command = svc.get("command") or []
        assert "-B" not in command and "--beat" not in command, name


def test_commands_match_the_cli(services: dict[str, dict[str, Any]]) -> None:
    """Migration, simulator, Flower and exporter run the smsdispatch commands the CLI provides."""
    assert services["migrate"]["command"] == ["smsdispatch", "db", "upgrade"]
    assert services["simulator"]["command"] == SIMULATOR_COMMAND
    assert services["flower"]["command"] == ["smsdispatch", "flower", "--address", "0.0.0.0"]
    assert services["metrics"]["command"] == ["smsdispatch", "metrics", "--port", "9808"]
    assert "http://127.0.0.1:9808/metrics" in healthcheck_text(services["metrics"])


def test_gateway_defaults_to_the_simulator(services: dict[str, dict[str, Any]]) -> None:
    """SMSPOINT_BASE_URL defaults to the simulator service and can be overridden from .env."""
    expected = f"${{SMSPOINT_BASE_URL:-{SIMULATOR_BASE_URL}}}"
    for name, svc in app_services(services).items():
        assert svc["environment"]["SMSPOINT_BASE_URL"] == expected, name
    assert option(services["simulator"]["command"], "--port") == str(urlsplit(SIMULATOR_BASE_URL).port)


def test_one_image_for_all_app_services(services: dict[str, dict[str, Any]]) -> None:
    """Every app service runs the same image built from the repository's Dockerfile."""
    apps = app_services(services)
    assert set(apps) == set(services) - {"redis", "postgres"}
    for name, svc in apps.items():
        assert svc["build"]["context"] == ".", name


# ----------------------------------------------------------------------------- variables and secrets


def strings(node: Any) -> list[str]:
    """Every string in a parsed YAML tree (keys and values)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_variable_reference_is_in_env_example(compose: dict[str, Any]) -> None:
    """Each ${VAR} in the compose file is listed in .env.example; required ones (:?) are set there."""
    listed = {entry.name: entry for entry in env_example()}
    refs = [ref for text in strings(compose) for ref in VAR_REF.findall(text)]
    assert refs
    for name, modifier in refs:
        assert name in listed, f"${{{name}}} is not in .env.example"
        if modifier.startswith(":?"):
            assert listed[name].active and listed[name].value, f"required {name} is commented out or empty"


def test_app_env_names_are_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    """Every variable an app container receives is a Settings field or alias, or a known infra variable."""
    known = settings_env_names() | INFRA_VARS
    from_env_file = {entry.name for entry in env_example() if entry.active}
    for name, svc in app_services(services).items():
        passed = set(svc.get("environment", {}))
        if svc.get("env_file"):
            passed |= from_env_file
        assert passed <= known, f"{name}: unknown variables {sorted(passed - known)}"


def test_no_secret_literal_in_compose(services: dict[str, dict[str, Any]]) -> None:
    """Keys, passwords and passwords inside URLs are all required ${VAR:?} references, never literals."""
    for name, svc in services.items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for key, value in env.items():
            if SECRET_NAME.search(key):
                assert REQUIRED_REF.match(str(value)), f"{name}.{key} is not a ${{VAR:?}} reference"
            assert not literal_url_passwords(str(value)), f"{name}.{key} has a literal password in its URL"
    assert REQUIRED_REF.match(option(services["redis"]["command"], "--requirepass"))


def test_env_example_documents_every_setting() -> None:
    """Every Settings field appears in .env.example (active, or commented out with its default)."""
    listed = {entry.name for entry in env_example()}
    missing = {canonical_env_name(name) for name in Settings.model_fields} - listed
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_entries_are_commented() -> None:
    """Every variable in .env.example has an explanatory comment on the line above it."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for entry in env_example():
        above = lines[entry.line - 2] if entry.line >= 2 else ""
        assert above.startswith("#") and not ASSIGNMENT.match(above), f"{entry.name} has no comment above"


def test_env_example_secrets_are_placeholders() -> None:
    """Secret values in .env.example are change-me placeholders (or the simulator's public test key)."""
    from dispatcher.simulator import DEFAULT_API_KEY

    secrets = [entry for entry in env_example() if SECRET_NAME.search(entry.name)]
    assert {"SMSPOINT_API_KEY", "WEBHOOK_SECRET", "REDIS_PASSWORD", "POSTGRES_PASSWORD",
            "FLOWER_PASSWORD"} <= {entry.name for entry in secrets}
    for entry in secrets:
        assert "change-me" in entry.value or entry.value == DEFAULT_API_KEY, entry.name


def test_env_example_values_are_valid_settings(clean_env: pytest.MonkeyPatch) -> None:
    """Settings accepts the active values once the change-me placeholders are replaced (and refuses each
    placeholder, naming it), and each commented-out value is that setting's real default."""
    entries = env_example()
    for entry in entries:
        if entry.active and entry.name not in INFRA_VARS:
            clean_env.setenv(entry.name, entry.value.replace("change-me", "real"))
    Settings(_env_file=None)  # type: ignore[call-arg]
    for entry in entries:
        if entry.active and "change-me" in entry.value and entry.name not in INFRA_VARS:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv(entry.name, entry.value)
                with pytest.raises(ValueError, match=f"{entry.name} still holds the placeholder 'change-me'"):
                    Settings(_env_file=None)  # type: ignore[call-arg]
    for entry in entries:
        if entry.active or not entry.value:
            continue
        name = field_of(entry.name)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(entry.name, entry.value)
            value = getattr(Settings(_env_file=None), name)  # type: ignore[call-arg]
        assert plain(value) == plain(Settings.model_fields[name].default), f"{entry.name}={entry.value}"


# ----------------------------------------------------------------------------- Redis, PostgreSQL, health


def test_redis_is_durable_and_protected(services: dict[str, dict[str, Any]]) -> None:
    """Redis 7 runs with AOF (everysec), noeviction and a password, on a volume; its check authenticates."""
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = redis["command"]
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--appendfsync") == "everysec"
    assert option(command, "--maxmemory-policy") == "noeviction"
    assert option(command, "--requirepass").startswith("${REDIS_PASSWORD:?")
    assert any(str(v).endswith(":/data") for v in redis["volumes"])
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    assert "redis-cli ping" in healthcheck_text(redis)


def test_postgres_is_persistent_and_checked(services: dict[str, dict[str, Any]]) -> None:
    """PostgreSQL 16 keeps its data on a volume and is health-checked with pg_isready."""
    pg = services["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in healthcheck_text(pg)


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_have_healthcheck_and_restart(services: dict[str, dict[str, Any]],
                                                             name: str) -> None:
    """Every long-running service has a health check and restarts on its own."""
    svc = services[name]
    assert svc["healthcheck"]["test"]
    assert svc["restart"] in {"always", "unless-stopped", "on-failure"}


def test_startup_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    """Migration waits for a healthy PostgreSQL; workers, beat and exporter wait for it to finish."""
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    for name in ("worker-otp", "worker-bulk", "beat", "metrics", "api"):
        deps = services[name]["depends_on"]
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_flower_requires_credentials(services: dict[str, dict[str, Any]]) -> None:
    """Flower refuses to start without FLOWER_USER and FLOWER_PASSWORD."""
    env = services["flower"]["environment"]
    assert REQUIRED_REF.match(env["FLOWER_USER"])
    assert REQUIRED_REF.match(env["FLOWER_PASSWORD"])


def test_published_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    """Nothing is published beyond 127.0.0.1, and Redis and PostgreSQL are not published at all."""
    assert "ports" not in services["redis"] and "ports" not in services["postgres"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


# ----------------------------------------------------------------------------- image


def test_dockerfile_builds_one_non_root_image() -> None:
    """The Dockerfile uses python:3.11-slim, installs with the lock as constraints, runs unprivileged."""
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases and all(base == "python:3.11-slim" for base in bases)
    assert re.search(r"^RUN pip install -c requirements\.lock \.$", text, flags=re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.findall(r"^CMD\s+(.+)$", text, flags=re.MULTILINE)[-1] == '["smsdispatch", "--help"]'
    assert (ROOT / "requirements.lock").is_file()


def test_dockerignore_keeps_secrets_out_of_the_image() -> None:
    """The build context is an allow-list: .env, .venv and .git never reach the image."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert {"pyproject.toml", "requirements.lock", "dispatcher", "workers"} <= allowed
    assert not any(path.startswith((".env", ".venv", ".git")) for path in allowed)


def test_api_service_serves_the_cli_command_and_checks_readiness(services: dict[str, dict[str, Any]]) -> None:
    """The api service runs `smsdispatch api` on 0.0.0.0:8080, publishes it on loopback, checks /readyz."""
    api = services["api"]
    command = api["command"]
    assert command[:len(API_COMMAND)] == API_COMMAND
    assert int(option(command, "--workers")) >= 1
    assert "127.0.0.1:8080:8080" in api["ports"]
    assert "http://127.0.0.1:8080/readyz" in healthcheck_text(api)


def test_compose_v2_is_stated_where_a_user_starts(compose: dict[str, Any]) -> None:
    """The file uses Compose v2 syntax (top-level name:), which Compose 1.x rejects: the file's header and the
    README say so."""
    assert "name" in compose
    assert "Needs Docker Compose v2" in COMPOSE_FILE.read_text().split("\n\n")[0]
    readme = (ROOT / "README.md").read_text()
    assert "Docker Compose v2" in readme and "Compose 1.x" in readme
