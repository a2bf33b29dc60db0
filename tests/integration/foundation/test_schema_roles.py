"""Schema, migrations and least privilege, through PgBouncer."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tests.support.stack import REPO, TestStack

pytestmark = pytest.mark.integration

FILL_SQL = """INSERT INTO trading.fills (bot_id, symbol, exec_id, order_id, side, exec_type, exec_price,
    exec_qty, exec_value, exec_time, commission, source) VALUES (%s, 'BTCUSDT', %s, 'o1', 'Buy', 'Trade',
    %s, %s, %s, %s, 0.01, 'ws')"""


def connect(stack: TestStack, role: str) -> psycopg.Connection:
    return psycopg.connect(stack.db.dsn(role), prepare_threshold=None, autocommit=True)


def test_strategy_role_cannot_insert_fills(clean_state: TestStack) -> None:
    with connect(clean_state, "strategy") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table fills"):
            conn.execute(FILL_SQL, ("shortseller_001", "x1", 1, 1, 1, datetime.now(UTC)))


@pytest.mark.parametrize("role", ["reconciler", "c2"])
def test_other_roles_cannot_write_fills(clean_state: TestStack, role: str) -> None:
    with connect(clean_state, role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(FILL_SQL, ("shortseller_001", "x2", 1, 1, 1, datetime.now(UTC)))


def test_listener_writes_and_exec_id_is_unique(clean_state: TestStack) -> None:
    now = datetime.now(UTC)
    with connect(clean_state, "listener") as conn:
        conn.execute(FILL_SQL, ("shortseller_001", "e1", Decimal("50000.1"), Decimal("0.001"), Decimal("50.0001"), now))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(FILL_SQL, ("shortseller_001", "e1", 1, 1, 1, now))
        price = conn.execute("SELECT exec_price FROM trading.fills WHERE exec_id = 'e1'").fetchone()[0]
    assert price == Decimal("50000.1")


def test_strategy_updates_only_its_own_bot_row(clean_state: TestStack) -> None:
    with connect(clean_state, "strategy") as conn:
        for bot in ("shortseller_001", "lxalgo_001"):
            with conn.transaction():
                conn.execute("SELECT set_config('trading.bot_id', %s, true)", (bot,))
                conn.execute("INSERT INTO trading.bots (bot_id, bot_name, strategy_name, redis_db) "
                             "VALUES (%s, %s, 'S', 0)", (bot, bot))
        with conn.transaction():
            conn.execute("SELECT set_config('trading.bot_id', 'shortseller_001', true)")
            cur = conn.execute("UPDATE trading.bots SET last_heartbeat = now()")
            assert cur.rowcount == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE trading.bots SET status = 'paused'")


def test_design_brief_queries_run_unchanged(clean_state: TestStack) -> None:
    now = datetime.now(UTC)
    with connect(clean_state, "listener") as conn:
        for i, bot in enumerate(["shortseller_001", "shortseller_001", "lxalgo_001"]):
            conn.execute(FILL_SQL, (bot, f"q{i}", Decimal("100.5"), Decimal("2"), Decimal("201"),
                                    now - timedelta(days=i)))
        conn.execute(FILL_SQL, ("momentum_001", "old", 1, 1, 1, now - timedelta(days=30)))
    with connect(clean_state, "c2") as conn:
        per_bot = conn.execute(
            "SELECT bot_id, COUNT(*) AS trades, SUM(exec_price * exec_qty) AS volume "
            "FROM trading.fills GROUP BY bot_id;").fetchall()
        daily = conn.execute(
            """SELECT DATE(exec_time) AS date, COUNT(*) AS trades, SUM(exec_price * exec_qty) AS volume,
       COUNT(DISTINCT bot_id) AS active_bots
FROM trading.fills WHERE exec_time > NOW() - INTERVAL '7 days' GROUP BY DATE(exec_time) ORDER BY date DESC;""").fetchall()
    assert sorted(per_bot) == [("lxalgo_001", 1, Decimal("201.0")), ("momentum_001", 1, Decimal("1")),
                               ("shortseller_001", 2, Decimal("402.0"))]
    assert sum(r[1] for r in daily) == 3 and all(r[3] == 1 for r in daily)


def test_migrations_rerun_is_a_no_op(stack: TestStack) -> None:
    res = subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=REPO, text=True,
                         capture_output=True, env={**stack.env, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("migrate: 0 applied (none)")


def test_money_columns_are_numeric_and_times_timestamptz(stack: TestStack) -> None:
    with connect(stack, "owner") as conn:
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'trading' AND table_name = 'fills'").fetchall())
    for col in ("exec_price", "exec_qty", "exec_value", "commission", "closed_size"):
        assert types[col] == "numeric"
    for col in ("exec_time", "created_at"):
        assert types[col] == "timestamp with time zone"
