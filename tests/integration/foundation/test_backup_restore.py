"""A backup restored into a fresh database holds the same fills, bots, round trips, PnL aggregates and
grants; `make backup` / `make restore` drive the same code. Real PostgreSQL, pg_dump and pg_restore."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.integration.foundation.test_grants import CATALOG_SQL
from tests.support.stack import REPO, TestStack

pytestmark = pytest.mark.integration

FILL_SQL = """INSERT INTO trading.fills (bot_id, symbol, exec_id, order_id, side, exec_type, exec_price,
    exec_qty, exec_value, exec_time, commission, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'ws')"""
TABLES = ("fills", "bots", "round_trips", "pnl_daily", "pnl_state", "schema_migrations")
FRESH_DB = "restore_check"


def populate(stack: TestStack) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with psycopg.connect(stack.db.dsn("strategy"), prepare_threshold=None, autocommit=True) as conn:
        for i, bot in enumerate(("shortseller_001", "lxalgo_001", "momentum_001")):
            with conn.transaction():
                conn.execute("SELECT set_config('trading.bot_id', %s, true)", (bot,))
                conn.execute("INSERT INTO trading.bots (bot_id, bot_name, strategy_name, redis_db) "
                             "VALUES (%s, %s, 'S', %s)", (bot, bot, i))
    rows = []
    for n in range(60):  # buy then sell, alternately winning and losing, over several days
        bot = ("shortseller_001", "lxalgo_001", "momentum_001")[n % 3]
        price = Decimal(50000 + 10 * n)
        qty = Decimal("0.010")
        t = start + timedelta(hours=5 * n)
        exit_price = price + (Decimal(25) if n % 2 else Decimal(-15))
        rows.append((bot, "BTCUSDT", f"e{n}a", f"o{n}a", "Buy", "Trade", price, qty, price * qty, t, Decimal("0.03")))
        rows.append((bot, "BTCUSDT", f"e{n}b", f"o{n}b", "Sell", "Trade", exit_price, qty, exit_price * qty,
                     t + timedelta(minutes=30), Decimal("0.03")))
    rows.append(("lxalgo_001", "ETHUSDT", "fund1", "", "Sell", "Funding", Decimal(3000), Decimal("0.5"),
                 Decimal(1500), start + timedelta(days=2), Decimal("0.12")))
    with psycopg.connect(stack.db.dsn("listener"), prepare_threshold=None, autocommit=True) as conn:
        conn.cursor().executemany(FILL_SQL, rows)
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        conn.execute("SELECT trading.pnl_refresh()")


def snapshot(stack: TestStack, dbname: str) -> dict[str, object]:
    dsn = stack.db.dsn("owner", direct=True).replace("dbname=trading_db", f"dbname={dbname}")
    with psycopg.connect(dsn) as conn:
        out: dict[str, object] = {t: sorted(map(repr, conn.execute(f"SELECT * FROM trading.{t}").fetchall()))
                                  for t in TABLES}
        out["grants"] = sorted(conn.execute(CATALOG_SQL).fetchall())
        out["pnl_totals"] = conn.execute(
            "SELECT bot_id, sum(trips), sum(wins), sum(fees) FROM trading.pnl_daily GROUP BY 1 ORDER BY 1").fetchall()
    return out


def backup_env(stack: TestStack) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))},
            **{k: v for k, v in stack.env.items() if k.startswith("POSTGRES_")}}


def run_backup(stack: TestStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.backup", *args], cwd=REPO, env=backup_env(stack),
                          text=True, capture_output=True, timeout=120)


@pytest.fixture
def fresh_db(clean_state: TestStack):
    drop = f"DROP DATABASE IF EXISTS {FRESH_DB} WITH (FORCE)"
    clean_state.local._superuser_sql(drop)
    clean_state.local._superuser_sql(f"CREATE DATABASE {FRESH_DB} OWNER trading_user")
    clean_state.local._superuser_sql(f"REVOKE ALL ON DATABASE {FRESH_DB} FROM PUBLIC")
    yield FRESH_DB
    clean_state.local._superuser_sql(drop)


def test_restore_into_a_fresh_database_equals_the_original(clean_state: TestStack, fresh_db: str,
                                                          tmp_path: Path) -> None:
    populate(clean_state)
    original = snapshot(clean_state, "trading_db")
    assert len(original["fills"]) == 121 and len(original["round_trips"]) == 60  # type: ignore[arg-type]

    res = run_backup(clean_state, "--dir", str(tmp_path), "once")
    assert res.returncode == 0, res.stderr
    (dump,) = tmp_path.glob("trading_db-*.dump")
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".partial-*"))

    res = run_backup(clean_state, "restore", str(dump), "--database", fresh_db)
    assert res.returncode == 0, res.stderr
    assert snapshot(clean_state, fresh_db) == original


def test_make_backup_and_restore(clean_state: TestStack, tmp_path: Path) -> None:
    populate(clean_state)
    original = snapshot(clean_state, "trading_db")
    env_file = tmp_path / "stack.env"
    clean_state.local.write_env_file(env_file)
    make = ["make", "-s", "-o", ".venv/.installed", f"STACK_ENV={env_file}", f"BACKUP_DIR={tmp_path / 'b'}"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))}
    res = subprocess.run([*make, "backup"], cwd=REPO, env=clean, text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    (dump,) = (tmp_path / "b").glob("trading_db-*.dump")
    with psycopg.connect(clean_state.db.dsn("owner", direct=True), autocommit=True) as conn:
        conn.execute("DELETE FROM trading.fills WHERE bot_id = 'lxalgo_001'")  # the accident
    res = subprocess.run([*make, "restore", f"FILE={dump}"], cwd=REPO, env=clean, text=True, capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert snapshot(clean_state, "trading_db") == original


@pytest.mark.parametrize("args", [["restore"], ["restore", "/nonexistent.dump"], ["frobnicate"]])
def test_bad_input_is_one_line_and_exit_2(clean_state: TestStack, args: list[str], tmp_path: Path) -> None:
    res = run_backup(clean_state, *args)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_file_that_is_not_a_dump_is_refused_and_changes_nothing(clean_state: TestStack, tmp_path: Path) -> None:
    populate(clean_state)
    original = snapshot(clean_state, "trading_db")
    bogus = tmp_path / "trading_db-20260101T000000Z.dump"
    bogus.write_text("not a dump")
    res = run_backup(clean_state, "restore", str(bogus))
    assert res.returncode == 2 and "not a pg_dump archive" in res.stderr
    assert snapshot(clean_state, "trading_db") == original


def test_the_container_command_dumps_at_backup_at_and_prunes(clean_state: TestStack, tmp_path: Path) -> None:
    """`python3 -m infra.backup serve` as the postgres_backup container runs it (`-S`: standard library only),
    with BACKUP_AT a few seconds ahead; old dumps beyond the retention are removed after the new one."""
    import signal
    import time as _time

    from infra.backup import dump_name, to_keep

    populate(clean_state)
    old = [datetime(2025, 1, 1, 3, tzinfo=UTC) + timedelta(days=n) for n in range(0, 400, 3)]
    for stamp in old:
        (tmp_path / dump_name(stamp)).write_bytes(b"old")
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=4)).replace(microsecond=0)
    env = {**backup_env(clean_state), "BACKUP_AT": due.strftime("%H:%M:%S"), "BACKUP_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-S", "-m", "infra.backup", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = _time.monotonic() + 90
        new: list[Path] = []
        while not new:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            assert _time.monotonic() < deadline, "no dump at BACKUP_AT"
            _time.sleep(0.2)
            new = [p for p in tmp_path.glob("trading_db-*.dump") if p.stat().st_size > 3]
        deadline = _time.monotonic() + 30
        expected = {dump_name(s) for s in to_keep([*old, *(datetime.strptime(p.name[11:27], "%Y%m%dT%H%M%SZ")
                                                           .replace(tzinfo=UTC) for p in new)])}
        while {p.name for p in tmp_path.glob("trading_db-*.dump")} != expected:
            assert _time.monotonic() < deadline, "old dumps were not pruned"
            _time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "backup: wrote" in out and not err
    written = datetime.strptime(new[0].name[11:27], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert due <= written < due + timedelta(seconds=30)
