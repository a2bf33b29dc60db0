"""A long-running task of the listener that dies unexpectedly (issue 12 item 6) makes the process log it and
exit non-zero, so Docker or the supervisor restarts it; before, it was noticed only at shutdown.

The fault is real: `trading.pnl_refresh()` is replaced (as by a bad migration) with one that answers NULL,
which the PnL refresh task does not expect; the function is put back afterwards."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.integration.listener.helpers import log_events
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


@pytest.fixture
def broken_pnl_refresh(clean_state: TestStack) -> Iterator[None]:
    with psycopg.connect(clean_state.db.dsn("owner", direct=True), autocommit=True) as conn:
        [(original,)] = conn.execute("SELECT pg_get_functiondef('trading.pnl_refresh()'::regprocedure)").fetchall()
        conn.execute("CREATE OR REPLACE FUNCTION trading.pnl_refresh() RETURNS integer LANGUAGE sql "
                     "AS $$ SELECT NULL::integer $$")
        try:
            yield
        finally:
            conn.execute(original)


async def test_a_task_that_dies_stops_the_process_with_a_non_zero_status(
        make_listener: Any, clean_state: TestStack, broken_pnl_refresh: None) -> None:
    bot_id = "lxalgo_001"
    listener = make_listener([bot_id], LISTENER_PNL_REFRESH_EVERY_S="0.2")
    deadline = asyncio.get_running_loop().time() + 30
    while listener.proc.poll() is None:
        assert asyncio.get_running_loop().time() < deadline, "still running\n" + listener.log_tail()
        await asyncio.sleep(0.1)
    assert listener.proc.returncode != 0
    [died] = log_events(listener.log_path.read_text(), "task_died")
    assert died["task"] == "pnl_refresh" and died["level"] == "error" and "TypeError" in died["error"]
