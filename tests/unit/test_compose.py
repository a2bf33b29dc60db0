"""The production compose file: valid against the compose specification, and safe to expose."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
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
    from strategies.runtime.live.config import LiveSettings
    for cls in (s.DatabaseSettings, s.RedisSettings, s.VenueSettings, s.BotKeysSettings,
                s.TelegramSettings, s.LoggingSettings, ListenerSettings, TradeSyncSettings, C2Settings, LiveSettings):
        for field in cls.model_fields.values():
            assert field.validation_alias in documented, field.validation_alias


def _module_exists(module: str) -> bool:
    path = REPO / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__main__.py").exists()


def test_service_commands_and_health_checks_name_real_entry_points() -> None:
    services = load()["services"]
    for name in ("websocket_listener", "trade_sync", "telegram_c2", "shortseller"):
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
    assert services["shortseller"]["container_name"] == "shortseller"
    assert services["shortseller"]["mem_limit"] == "256m"


def test_shortseller_service_runs_the_bot_after_the_listener_and_checks_it_decides() -> None:
    svc = load()["services"]["shortseller"]
    assert svc["command"] == ["python", "-m", "strategies.shortseller"]
    assert svc["restart"] == "unless-stopped"
    assert svc["depends_on"]["websocket_listener"] == {"condition": "service_started"}
    for infra in ("pgbouncer", "redis"):
        assert svc["depends_on"][infra] == {"condition": "service_healthy"}
    from strategies.shortseller.config import BOT_ID
    assert svc["healthcheck"]["test"] == ["CMD", "python", "-m", "strategies.health", BOT_ID]
    assert svc["logging"] == load()["services"]["websocket_listener"]["logging"]
    docker = (REPO / "infra" / "Dockerfile").read_text()  # the image holds the bot's code
    assert "COPY --chown=app:app strategies ./strategies" in docker


def test_shortseller_service_gets_every_setting_of_the_bot() -> None:
    """Its SHORTSELLER_* variables: every global one, and every per-symbol one of the symbols it
    trades by default (compose has no wildcard: a forgotten one would silently keep its default)."""
    from strategies.shortseller.config import DEFAULT_EXITS, GLOBAL_ONLY_FIELDS, SYMBOL_FIELDS, env_var
    env = load()["services"]["shortseller"]["environment"]
    wanted = {env_var(f) for f in (*GLOBAL_ONLY_FIELDS, *SYMBOL_FIELDS)}
    wanted |= {env_var(f, sym) for sym in DEFAULT_EXITS for f in SYMBOL_FIELDS}
    assert sorted(wanted - set(env)) == []
    assert {k for k in env if k.startswith("SHORTSELLER_")} == wanted | {
        "SHORTSELLER_BYBIT_API_KEY", "SHORTSELLER_BYBIT_API_SECRET"}


# ---- secrets per container --------------------------------------------------------------------
BOT_KEYS = {f"{p}_BYBIT_API_{k}" for p in ("SHORTSELLER", "LXALGO", "MOMENTUM") for k in ("KEY", "SECRET")}

# service -> the secret variables (of .env) it may see. Every service in the compose file needs a row.
ALLOWED_SECRETS: dict[str, set[str]] = {
    "postgres": {"PG_SUPERUSER_PASSWORD", "POSTGRES_PASSWORD", "PGBOUNCER_AUTH_PASSWORD"},
    "pgbouncer": {"PGBOUNCER_AUTH_PASSWORD"},
    "redis": {"REDIS_PASSWORD"},
    "migrate": {"POSTGRES_PASSWORD", "LISTENER_DB_PASSWORD", "STRATEGY_DB_PASSWORD", "RECONCILER_DB_PASSWORD",
                "C2_DB_PASSWORD"},
    "postgres_backup": {"POSTGRES_PASSWORD"},
    "websocket_listener": {"LISTENER_DB_PASSWORD", "REDIS_PASSWORD", *BOT_KEYS},
    "trade_sync": {"RECONCILER_DB_PASSWORD", "REDIS_PASSWORD", *BOT_KEYS},
    "telegram_c2": {"C2_DB_PASSWORD", "REDIS_PASSWORD", "C2_TELEGRAM_BOT_TOKEN"},
    # the strategy bots: their own key pair only
    **{name: {"STRATEGY_DB_PASSWORD", "REDIS_PASSWORD", f"{name.upper()}_BYBIT_API_KEY",
              f"{name.upper()}_BYBIT_API_SECRET"} for name in ("shortseller", "lxalgo", "momentum")},
}
_INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)")


def _secret(var: str) -> bool:
    from shared.log import _SECRET_ENV
    return bool(_SECRET_ENV.search(var))


def _walk_strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _walk_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _walk_strings(v)]
    return []


def variables_seen(svc: dict) -> set[str]:
    """The .env variables a container receives: bare keys of `environment` (passed through from .env)
    and every ${VAR} interpolated anywhere in its definition."""
    env = svc.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    bare = {k for k, v in env.items() if v is None}
    if "env_file" in svc:
        bare |= {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
                 if "=" in line and not line.startswith("#")}
    return bare | {m for s in _walk_strings(svc) for m in _INTERPOLATED.findall(s)}


def test_no_service_reads_the_whole_env_file() -> None:
    for name, svc in load()["services"].items():
        assert "env_file" not in svc, f"{name} reads a whole env_file"


def test_each_service_sees_only_its_own_secrets() -> None:
    for name, svc in load()["services"].items():
        assert name in ALLOWED_SECRETS, f"service {name} has no row in ALLOWED_SECRETS: decide what it may see"
        secrets = {v for v in variables_seen(svc) if _secret(v)}
        assert secrets == ALLOWED_SECRETS[name], (
            f"{name}: unexpected {sorted(secrets - ALLOWED_SECRETS[name])}, "
            f"missing {sorted(ALLOWED_SECRETS[name] - secrets)}")


def test_telegram_gets_no_trading_key_and_no_owner_password() -> None:
    seen = variables_seen(load()["services"]["telegram_c2"])
    assert not seen & BOT_KEYS and "POSTGRES_PASSWORD" not in seen


SERVICE_SETTINGS = {  # service -> the settings groups its process loads
    "websocket_listener": ("DatabaseSettings", "RedisSettings", "VenueSettings", "BotKeysSettings",
                           "LoggingSettings", "ListenerSettings"),
    "trade_sync": ("DatabaseSettings", "RedisSettings", "VenueSettings", "BotKeysSettings", "LoggingSettings",
                   "TradeSyncSettings"),
    "telegram_c2": ("DatabaseSettings", "RedisSettings", "VenueSettings", "TelegramSettings", "LoggingSettings",
                    "C2Settings"),
    "migrate": ("DatabaseSettings",),
    "shortseller": ("DatabaseSettings", "RedisSettings", "VenueSettings", "BotKeysSettings", "LoggingSettings",
                    "LiveSettings"),
}


def test_every_setting_a_service_reads_is_passed_to_it() -> None:
    """Without env_file a forgotten variable would silently fall back to its default."""
    from shared import settings as s
    from services.telegram_c2.config import C2Settings
    from services.trade_sync.config import TradeSyncSettings
    from services.websocket_listener.config import ListenerSettings
    from strategies.runtime.live.config import LiveSettings
    classes = {c.__name__: c for c in (s.DatabaseSettings, s.RedisSettings, s.VenueSettings, s.BotKeysSettings,
                                       s.TelegramSettings, s.LoggingSettings, ListenerSettings,
                                       TradeSyncSettings, C2Settings, LiveSettings)}
    services = load()["services"]
    for name, groups in SERVICE_SETTINGS.items():
        env = services[name]["environment"]
        for group in groups:
            for field in classes[group].model_fields.values():
                var = field.validation_alias
                if _secret(var) and var not in ALLOWED_SECRETS[name]:
                    continue
                assert var in env, f"{name} reads {var} ({group}) but compose does not pass it"


# ---- no password on a command line -----------------------------------------------------------
_ARGV_SECRET = re.compile(r"""(--requirepass|(^|\s)-a\s|(?<![a-z_])password=|--password|PGPASSWORD=["']?[^"'$])""",
                          re.IGNORECASE)


def test_no_secret_on_a_compose_command_line() -> None:
    """A value interpolated by compose into a command would sit in the process list; container-side
    `$$VAR` expansions into an environment assignment or a here-document do not."""
    for name, svc in load()["services"].items():
        argvs = [svc.get("command"), svc.get("entrypoint"), (svc.get("healthcheck") or {}).get("test")]
        for text in _walk_strings([a for a in argvs if a]):
            for var in _INTERPOLATED.findall(text):
                assert not _secret(var), f"{name}: ${{{var}}} is interpolated into a command line"
            assert not _ARGV_SECRET.search(text.split("<<", 1)[0]), f"{name}: a password flag in {text!r}"


def test_no_secret_on_a_makefile_command_line() -> None:
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith("\t"):
            assert not _ARGV_SECRET.search(line), f"Makefile: {line.strip()}"


# ---- backups -----------------------------------------------------------------------------------
def test_backup_service_runs_the_tested_code_daily() -> None:
    svc = load()["services"]["postgres_backup"]
    assert svc["command"] == ["python3", "-m", "infra.backup", "serve"]
    assert svc["environment"]["BACKUP_DIR"] == "/backups" and "BACKUP_AT" in svc["environment"]
    assert any(str(v).endswith(":/backups") for v in svc["volumes"]) and "postgres_backups" in load()["volumes"]
    docker = (REPO / svc["build"]["dockerfile"]).read_text()
    assert docker.startswith("#") and "FROM postgres:16" in docker  # pg_dump of the server's major version
    assert load()["services"]["postgres"]["image"].startswith("postgres:16")
    assert "COPY infra/__init__.py infra/backup.py ./infra/" in docker and "\nUSER postgres" in docker
    # standard library only: the image has no virtual environment
    res = subprocess.run([sys.executable, "-I", "-S", "-c",
                          "import sys; sys.path.insert(0, '.'); import infra.backup"],
                         cwd=REPO, text=True, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("var,value", [("BACKUP_AT", "25:00"), ("BACKUP_KEEP_DAILY", "0"),
                                       ("POSTGRES_PASSWORD", "")])
def test_backup_service_refuses_bad_settings_at_start(var: str, value: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "x", var: value}
    res = subprocess.run([sys.executable, "-m", "infra.backup", "--dir", "/nonexistent", "serve"], cwd=REPO, env=env,
                         text=True, capture_output=True, timeout=60)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and var in res.stderr, res.stderr


# ---- logs --------------------------------------------------------------------------------------
def test_every_service_rotates_its_logs() -> None:
    for name, svc in load()["services"].items():
        logging = svc.get("logging")
        assert logging, f"{name} has no logging settings (unbounded json-file log)"
        assert logging["driver"] == "json-file", name
        size, files = logging["options"]["max-size"], logging["options"]["max-file"]
        assert re.fullmatch(r"[1-9]\d*[km]", size) and int(files) >= 2, (name, size, files)


def test_local_supervisor_rotates_like_compose() -> None:
    from infra.run_local import LOG_BACKUPS, LOG_MAX_BYTES
    options = load()["services"]["websocket_listener"]["logging"]["options"]
    assert LOG_MAX_BYTES == int(options["max-size"].rstrip("m")) * 1024 * 1024
    assert LOG_BACKUPS + 1 == int(options["max-file"])
