"""Reconciler findings are reported once each, whatever order the runs finish in (issue 12 item 7):
a run still going when a later one finishes is reported when it finishes, also across a restart."""
from __future__ import annotations

import asyncio
import json

import pytest

from services.telegram_c2.service import C2Service
from tests.integration.telegram.harness import ADMIN, C2Harness

pytestmark = pytest.mark.integration


def start_run(c2: C2Harness, bot_id: str) -> int:
    return c2.owner_sql("""INSERT INTO trading.sync_runs (run_id, kind, trigger, bot_id, range_start, range_end)
                           VALUES (gen_random_uuid(), 'sync', 'schedule', %s, now() - interval '1 hour', now())
                           RETURNING id""", (bot_id,))[0][0]


def finish_run(c2: C2Harness, run_id: int, missing: int, status: str = "ok") -> None:
    c2.owner_sql("""UPDATE trading.sync_runs SET status = %s, finished_at = now(), missing_found = %s, recovered = %s
                    WHERE id = %s""", (status, missing, missing, run_id))


def reconciler_alerts(c2: C2Harness) -> list[str]:
    return [c.text for c in c2.api.calls_to("sendMessage", ADMIN) if c.text.startswith("ALERT: reconciler")]


async def rounds(c2: C2Harness, n: int = 4) -> None:
    """Let the watcher (0.3 s a round) go round a few times: what it would repeat, it repeats here."""
    await asyncio.sleep(n * c2.service.settings.alert_check_interval_s)


async def until_cursor(c2: C2Harness) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while not c2.owner_sql("SELECT 1 FROM trading.alert_state WHERE alert_key = 'reconciler:last_run_id'"):
        assert asyncio.get_running_loop().time() < deadline, "the watcher never set its cursor"
        await asyncio.sleep(0.05)


async def test_runs_finishing_out_of_order_are_each_reported_once(c2: C2Harness) -> None:
    await until_cursor(c2)
    slow = start_run(c2, "lxalgo_001")
    fast = start_run(c2, "momentum_001")
    clean = start_run(c2, "shortseller_001")
    assert slow < fast < clean
    finish_run(c2, fast, 2)
    finish_run(c2, clean, 0)
    await c2.api.wait_for("sendMessage", lambda c: c.text.startswith("ALERT: reconciler found 2 missing fills for momentum_001"))
    await rounds(c2)
    finish_run(c2, slow, 3, status="partial")
    await c2.api.wait_for("sendMessage", lambda c: c.text.startswith("ALERT: reconciler found 3 missing fills for lxalgo_001"))
    await rounds(c2)
    assert reconciler_alerts(c2) == [
        "ALERT: reconciler found 2 missing fills for momentum_001 (2 recovered, run ok)",
        "ALERT: reconciler found 3 missing fills for lxalgo_001 (3 recovered, run partial)"]


async def test_a_run_still_going_across_a_restart_is_reported_once(c2: C2Harness) -> None:
    await until_cursor(c2)
    slow = start_run(c2, "lxalgo_001")
    fast = start_run(c2, "momentum_001")
    finish_run(c2, fast, 1)
    await c2.api.wait_for("sendMessage", lambda c: c.text.startswith("ALERT: reconciler found 1 missing fills for momentum_001"))
    # Alerts are at least once: one sent but not yet recorded would be sent again after a restart.
    deadline = asyncio.get_running_loop().time() + 15
    while fast not in json.loads(c2.owner_sql(
            "SELECT detail FROM trading.alert_state WHERE alert_key = 'reconciler:last_run_id'")[0][0])["reported"]:
        assert asyncio.get_running_loop().time() < deadline, "the report was never recorded"
        await asyncio.sleep(0.05)
    await c2.service.stop()
    restarted = C2Service(c2.service.telegram, c2.stack.db, c2.stack.redis, c2.service.settings)
    await restarted.start()
    try:
        await rounds(c2)
        finish_run(c2, slow, 4)
        await c2.api.wait_for("sendMessage", lambda c: c.text.startswith("ALERT: reconciler found 4 missing fills for lxalgo_001"))
        await rounds(c2)
    finally:
        await restarted.stop()
    assert reconciler_alerts(c2) == [
        "ALERT: reconciler found 1 missing fills for momentum_001 (1 recovered, run ok)",
        "ALERT: reconciler found 4 missing fills for lxalgo_001 (4 recovered, run ok)"]
