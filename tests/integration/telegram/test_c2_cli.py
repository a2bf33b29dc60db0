"""The terminal prints the same reports as Telegram, without a token; the health command reports
the running service's heartbeat."""
from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import matplotlib.image
import pytest

from shared.redis_client import redis_for
from tests.integration.telegram.harness import ADMIN, C2Harness
from tests.integration.telegram.randomfills import random_history
from tests.integration.telegram.writer import listener_writer

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


async def run_main(c2: C2Harness, *argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2_TELEGRAM")}
    env.update(c2.stack.env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.telegram_c2.main", *argv, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_prints_what_telegram_sends(c2: C2Harness, tmp_path: Path) -> None:
    async with listener_writer(c2.stack) as writer:
        await writer.write(random_history(21, 120, days=2))
    for command in (["analytics", "all"], ["daily", "30"], ["fills", "7", "lxalgo_001"], ["performance"],
                    ["analytics", "bravo", "all"], ["daily", "charlie", "30"], ["trades", "5", "bravo"], ["trades"]):
        reply = await c2.ask(ADMIN, "/" + " ".join(command))
        code, out, err = await run_main(c2, "cli", *command)
        assert (code, err) == (0, "")
        assert out.rstrip("\n") == reply.text
    chart = tmp_path / "equity.png"
    code, _, _ = await run_main(c2, "cli", "performance", "lxalgo_001", "--chart", str(chart))
    assert code == 0
    assert matplotlib.image.imread(io.BytesIO(chart.read_bytes()), format="png").shape[:2] == (400, 800)


async def test_cli_rejects_bad_input_with_one_line(c2: C2Harness) -> None:
    code, out, err = await run_main(c2, "cli", "fills", "-3")
    assert (code, out, err.strip()) == (2, "", "The number of fills must be positive.")
    for argv, message in ((("trades", "0"), "The number of trades must be positive."),
                          (("analytics", "999999"), "At most 365 days."),
                          (("quick", "extra"), "Too many arguments. Send /help for usage.")):
        code, out, err = await run_main(c2, "cli", *argv)
        assert (code, out, err.strip()) == (2, "", message)


async def test_cli_quick_and_sitrep(c2: C2Harness) -> None:
    code, out, err = await run_main(c2, "cli", "quick")
    assert (code, err) == (0, "") and "  total: 0.00" in out
    code, out, err = await run_main(c2, "cli", "sitrep")
    assert (code, err) == (0, "") and out.splitlines()[-1].startswith("Verdict: CRITICAL (listener not reporting")


async def test_sitrep_shows_the_guard_state_the_bots_runtime_saved(c2: C2Harness) -> None:
    import json
    from datetime import datetime, timedelta, timezone

    import psycopg

    until = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    risk = {"tripped": {"day_loss": {"since": "2026-01-01T00:00:00+00:00", "until": until}}, "kill_switch": None}
    with psycopg.connect(c2.stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        conn.execute("INSERT INTO trading.strategy_state (bot_id, key, value) VALUES (%s, '_risk', %s::jsonb),"
                     " (%s, '_risk', %s::jsonb)", ("lxalgo_001", json.dumps(risk), "momentum_001",
                                                   json.dumps({"tripped": {}, "kill_switch": None})))
    code, out, err = await run_main(c2, "cli", "sitrep")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert any(line.startswith("lxalgo_001 (bravo)") and "guard TRIPPED day_loss" in line for line in lines), out
    assert any(line.startswith("momentum_001 (charlie)") and "guard ok" in line for line in lines), out
    assert any(line.startswith("shortseller_001 (alpha)") and "guard none kept" in line for line in lines), out
    assert "lxalgo_001 guard tripped: day_loss" in lines[-1]


async def test_health_reports_the_running_service(c2: C2Harness) -> None:
    code, out, _ = await run_main(c2, "health")
    assert code == 0 and out.startswith("healthy: last heartbeat")
    await c2.service.stop()
    # A stopped service's beat lives until its TTL (120 s); expire it now instead of waiting.
    platform = redis_for(c2.stack.redis, 0)
    await platform.delete("heartbeat:telegram_c2:main")
    await platform.aclose()
    code, out, _ = await run_main(c2, "health")
    assert (code, out.strip()) == (1, "unhealthy: no heartbeat")
