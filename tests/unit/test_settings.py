"""Bad configuration stops a process with one line naming the variable, and a non-zero exit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import BotKeysSettings, ConfigError, DatabaseSettings, VenueSettings, build_settings

REPO = Path(__file__).resolve().parents[2]
GOOD = {"C2_TELEGRAM_BOT_TOKEN": "123456:abcdefghijklmnopqrstuvwxyz0123456789", "C2_TELEGRAM_ADMIN_IDS": "42"}


def run_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("C2_", "BYBIT_", "SHORTSELLER_", "LXALGO_", "MOMENTUM_", "POSTGRES_"))}
    return subprocess.run([sys.executable, "-m", "shared.check_config", *args], cwd=REPO, text=True,
                          capture_output=True, env={**clean, **env}, timeout=60)


def assert_one_line_failure(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0]


def test_valid_configuration_passes() -> None:
    res = run_check(GOOD, "telegram", "venue")
    assert res.returncode == 0, res.stderr
    assert "venue sim at http://127.0.0.1:18080" in res.stdout


def test_missing_secret() -> None:
    res = run_check({"C2_TELEGRAM_ADMIN_IDS": "42"}, "telegram")
    assert_one_line_failure(res, "C2_TELEGRAM_BOT_TOKEN is missing")


def test_missing_bot_api_secret_names_the_variable() -> None:
    res = run_check({"LXALGO_BYBIT_API_KEY": "abc"}, "bots", "--bot", "lxalgo_001")
    assert_one_line_failure(res, "LXALGO_BYBIT_API_SECRET is missing")


def test_missing_database_password_for_role() -> None:
    res = run_check({}, "database", "--db-role", "listener")
    assert_one_line_failure(res, "LISTENER_DB_PASSWORD is missing")


def test_non_numeric_admin_id() -> None:
    res = run_check({**GOOD, "C2_TELEGRAM_ADMIN_IDS": "42,bob"}, "telegram")
    assert_one_line_failure(res, "C2_TELEGRAM_ADMIN_IDS", "'bob' is not a numeric Telegram user id")


def test_malformed_url() -> None:
    res = run_check({"BYBIT_REST_URL": "htp//api.bybit.com"}, "venue")
    assert_one_line_failure(res, "BYBIT_REST_URL", "not a valid http/https URL")


def test_malformed_port() -> None:
    res = run_check({"POSTGRES_PORT": "54x"}, "database")
    assert_one_line_failure(res, "POSTGRES_PORT")


def test_secret_value_is_not_echoed_in_the_error() -> None:
    res = run_check({"C2_TELEGRAM_BOT_TOKEN": "supersecrettoken123", "C2_TELEGRAM_ADMIN_IDS": "x"}, "telegram")
    assert res.returncode == 2 and "supersecrettoken123" not in res.stderr + res.stdout


def test_live_is_never_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BYBIT_VENUE", "BYBIT_DEMO", "BYBIT_TESTNET", "BYBIT_REST_URL"):
        monkeypatch.delenv(var, raising=False)
    venue = build_settings(VenueSettings)
    assert venue.venue == "sim" and "bybit.com" not in venue.rest_url


def test_venue_flags_resolve_and_conflicts_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_DEMO", "true")
    v = build_settings(VenueSettings)
    assert (v.venue, v.rest_url, v.ws_private_url) == (
        "demo", "https://api-demo.bybit.com", "wss://stream-demo.bybit.com/v5/private")
    monkeypatch.setenv("BYBIT_VENUE", "live")
    with pytest.raises(ConfigError, match="contradicts"):
        build_settings(VenueSettings)


def test_url_overrides_point_at_another_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_VENUE", "testnet")
    monkeypatch.setenv("BYBIT_REST_URL", "http://127.0.0.1:9999/")
    v = build_settings(VenueSettings)
    assert v.rest_url == "http://127.0.0.1:9999"
    assert v.ws_public_url == "wss://stream-testnet.bybit.com/v5/public/linear"


def test_dsn_goes_through_pgbouncer_unless_direct() -> None:
    db = DatabaseSettings(POSTGRES_PASSWORD="pw'x", PGBOUNCER_PORT="6432", POSTGRES_PORT="5432")
    assert "port=6432" in db.dsn("owner") and "port=5432" in db.dsn("owner", direct=True)
    assert "password='pw\\'x'" in db.dsn("owner")
    with pytest.raises(ConfigError, match="C2_DB_PASSWORD is missing"):
        db.dsn("c2")


def test_configured_bots_needs_both_halves() -> None:
    keys = BotKeysSettings(SHORTSELLER_BYBIT_API_KEY="k", SHORTSELLER_BYBIT_API_SECRET="s",
                           MOMENTUM_BYBIT_API_KEY="k2")
    assert keys.configured_bots() == ["shortseller_001"]
    with pytest.raises(ValueError, match="unknown bot"):
        keys.credentials("nobody_001")
