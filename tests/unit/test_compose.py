"""The production compose file: valid against the compose specification, and safe to expose."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.production.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_against_compose_spec() -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    res = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ports_only_on_loopback() -> None:
    for name, svc in load()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_infrastructure_containers_and_health_checks() -> None:
    services = load()["services"]
    names = {svc.get("container_name") for svc in services.values()}
    assert {"trading_postgres", "pgbouncer", "trading_redis"} <= names
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "pgbouncer", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for vol in ("postgres_data", "redis_data"):
        assert vol in load()["volumes"]


def test_pgbouncer_matches_the_local_stack_settings() -> None:
    env = load()["services"]["pgbouncer"]["environment"]
    ini = (REPO / "infra" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert (env["POOL_MODE"], env["MAX_CLIENT_CONN"], env["DEFAULT_POOL_SIZE"], env["RESERVE_POOL_SIZE"],
            env["AUTH_TYPE"]) == ("transaction", "100", "20", "5", "scram-sha-256")
    for line in ("pool_mode = transaction", "max_client_conn = 100", "default_pool_size = 20",
                 "reserve_pool_size = 5", "auth_type = scram-sha-256"):
        assert line in ini


def test_passwords_come_from_env_and_no_secret_is_inline() -> None:
    text = COMPOSE.read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${REDIS_PASSWORD:?" in text
    example = (REPO / ".env.example").read_text()
    assert "change-me" not in text and "BEGIN" not in text
    assert "POSTGRES_PASSWORD=" in example


def test_dockerfile_runs_as_non_root_multi_stage() -> None:
    text = (REPO / "infra" / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2 and "\nUSER app" in text


def test_env_example_documents_every_settings_variable() -> None:
    from shared import settings as s
    documented = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
                  if "=" in line and not line.startswith("#")}
    from services.telegram_c2.config import C2Settings
    from services.trade_sync.config import TradeSyncSettings
    from services.websocket_listener.config import ListenerSettings
    for cls in (s.DatabaseSettings, s.RedisSettings, s.VenueSettings, s.BotKeysSettings,
                s.TelegramSettings, s.LoggingSettings, ListenerSettings, TradeSyncSettings, C2Settings):
        for field in cls.model_fields.values():
            assert field.validation_alias in documented, field.validation_alias


def _module_exists(module: str) -> bool:
    path = REPO / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__main__.py").exists()


def test_service_commands_and_health_checks_name_real_entry_points() -> None:
    services = load()["services"]
    for name in ("websocket_listener", "trade_sync", "telegram_c2"):
        svc = services[name]
        for argv in (svc["command"], svc["healthcheck"]["test"][1:]):
            assert argv[0] == "python", name
            if argv[1] == "-m":
                assert _module_exists(argv[2]), f"{name}: no module {argv[2]}"
            else:
                workdir = Path(svc["working_dir"]).relative_to("/app")
                assert (REPO / workdir / argv[1]).exists(), f"{name}: no file {argv[1]} in {workdir}"


def test_application_containers_names_and_memory_limits() -> None:
    services = load()["services"]
    assert services["websocket_listener"]["container_name"] == "websocket_listener"
    assert services["trade_sync"]["container_name"] == "trade_sync_service"
    assert services["trade_sync"]["mem_limit"] == "512m"
    assert services["trade_sync"]["working_dir"] == "/app/services/trade_sync"
    assert services["telegram_c2"]["container_name"] == "telegram_manager"
    assert services["telegram_c2"]["mem_limit"] == "256m"
