"""A configured secret never reaches the log output, however it is logged."""
from __future__ import annotations

import io
import json

import pytest
import structlog

from shared.log import configure_logging

SECRET = "Zq9-very-secret-api-secret-value"
TOKEN = "1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    monkeypatch.setenv("LXALGO_BYBIT_API_SECRET", SECRET)
    monkeypatch.setenv("C2_TELEGRAM_BOT_TOKEN", TOKEN)
    out = io.StringIO()
    configure_logging("test_service", bot_id="lxalgo_001", fmt="json", stream=out)
    return out


def test_secrets_are_redacted_everywhere(captured: io.StringIO) -> None:
    log = structlog.get_logger()
    log.info("connecting", api_secret=SECRET)
    log.info(f"raw text with {SECRET} inside")
    log.info("nested", payload={"args": ["key", 123, SECRET]}, headers={"X-BAPI-SIGN": "ab" * 32})
    log.info("dsn", dsn="host=x port=1 user=u password='hunter2-long'")
    log.info("url", url=f"https://api.telegram.org/bot{TOKEN}/getMe")
    log.info("redis", url="redis://:p4ssw0rd-long@127.0.0.1:6379/0")
    try:
        raise RuntimeError(f"auth failed for {SECRET}")
    except RuntimeError:
        log.exception("boom")
    text = captured.getvalue()
    for leaked in (SECRET, TOKEN, "hunter2-long", "p4ssw0rd-long", "ab" * 32):
        assert leaked not in text
    assert text.count("***") >= 7


def test_every_line_is_json_with_service_and_bot(captured: io.StringIO) -> None:
    structlog.get_logger().info("hello", symbol="BTCUSDT")
    line = json.loads(captured.getvalue().strip().splitlines()[-1])
    assert line["service"] == "test_service" and line["bot_id"] == "lxalgo_001"
    assert line["event"] == "hello" and line["symbol"] == "BTCUSDT" and line["timestamp"].endswith("Z")


DOTENV_SECRET = "dotenv-only-Secret-9f3a1c77e2"
DOTENV_PASSWORD = "dotenv-only-Password-04bd9e"


def test_secrets_read_from_dotenv_are_redacted(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The processes read `.env` themselves (pydantic-settings), so its secrets never pass through
    the environment: they must be redacted all the same."""
    (tmp_path / ".env").write_text(f"MOMENTUM_BYBIT_API_SECRET={DOTENV_SECRET}\n"
                                   f"export C2_DB_PASSWORD='{DOTENV_PASSWORD}'\nLOG_LEVEL=INFO\n")
    monkeypatch.chdir(tmp_path)
    for var in ("MOMENTUM_BYBIT_API_SECRET", "C2_DB_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    out = io.StringIO()
    configure_logging("test_service", fmt="json", stream=out)
    log = structlog.get_logger()
    log.info(f"signing with {DOTENV_SECRET}")
    log.info("connect", detail=f"auth failed for {DOTENV_PASSWORD}")
    text = out.getvalue()
    assert DOTENV_SECRET not in text and DOTENV_PASSWORD not in text
    assert text.count("***") == 2
