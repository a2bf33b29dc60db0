"""A bot's state in PostgreSQL (`PgStateStore`, `trading.strategy_state`): exact round trips, each bot
confined to its own rows by row-level security, saves atomic under concurrency, and the state and
the store surviving PgBouncer and PostgreSQL restarts. All through PgBouncer as the real roles."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from shared.alpha_db_client import AlphaDBClient
from strategies.runtime.state_pg import PgStateStore
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
A, B = "lxalgo_001", "momentum_001"
HUGE = "12345678901234567890.123456789012345678"
# Floats come back as the same floats, also those json writes with an exponent (jsonb prints numbers
# without one: 1e+20 would come back as an int if written as json writes it).
FLOATS = [0.1, 1e20, 1e-7, -2.5e300, 1.7976931348623157e308, 5e-324, 1.0, 123456.789]


def connect(stack: TestStack, role: str) -> psycopg.Connection:
    return psycopg.connect(stack.db.dsn(role), prepare_threshold=None, autocommit=True)


async def test_values_round_trip_exactly_and_survive_a_new_process(clean_state: TestStack) -> None:
    entered = datetime(2026, 5, 1, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with PgStateStore.open(clean_state.db, A) as store:
        assert await store.load() == {}
        await store.save({
            "peak_equity": Decimal(HUGE), "tick": Decimal("0.10"), "entered_at": entered,
            "cooldown_until": {"BTCUSDT": datetime(2026, 5, 2, tzinfo=timezone.utc)},
            "entries_today": 3, "ratio": 0.1, "halted": False, "reason": None,
            "plan": {"stops": [Decimal("101.5"), "99"], "ladder": [1, 2, {"done": True}]}, "nom": "Ünïcødé ✓",
            "floats": FLOATS, "big_int": 10**30, "int_keys": {1: "one"},
        })
        await store.save({"entries_today": 4, "tick": Decimal("1E-8")})
        await store.delete(["ratio", "never_saved"])
        await store.delete([])
        await store.save({})
    expected = {
        "peak_equity": HUGE, "tick": "1E-8", "entered_at": "2026-05-01T10:30:00.123456Z",
        "cooldown_until": {"BTCUSDT": "2026-05-02T00:00:00Z"}, "entries_today": 4, "halted": False,
        "reason": None, "plan": {"stops": ["101.5", "99"], "ladder": [1, 2, {"done": True}]}, "nom": "Ünïcødé ✓",
        "floats": FLOATS, "big_int": 10**30, "int_keys": {"1": "one"},
    }
    # A new process: a new pool, the state is read back as it was saved (decimals exact as strings).
    async with AlphaDBClient(bot_id=A, db=clean_state.db, redis=clean_state.redis) as client:
        store = PgStateStore.for_client(client)
        loaded = await store.load()
    assert loaded == expected
    assert [type(f) for f in loaded["floats"]] == [float] * len(FLOATS)  # type: ignore[union-attr]
    assert Decimal(loaded["peak_equity"]) == Decimal(HUGE)  # type: ignore[arg-type]
    assert datetime.fromisoformat(loaded["entered_at"]) == entered  # type: ignore[arg-type]
    with connect(clean_state, "c2") as conn:
        row = conn.execute("SELECT value, updated_at > now() - interval '1 minute' FROM trading.strategy_state "
                           "WHERE bot_id = %s AND key = 'tick'", (A,)).fetchone()
    assert row == ("1E-8", True)


@pytest.mark.parametrize("items, message", [
    ({"ok": 1, "bad": Decimal("NaN")}, "'bad': NaN is not a finite decimal"),
    ({"ok": 1, "bad": float("inf")}, "'bad': inf is not a finite number"),
    ({"ok": 1, "at": datetime(2026, 5, 1)}, "'at': 2026-05-01T00:00:00 has no time zone"),
    ({"ok": 1, "s": {1, 2}}, "'s': set is not JSON"),
    ({"ok": 1, "": 2}, "state key '': a string of 1 to 200"),
    ({"ok": 1, "k" * 201: 2}, "a string of 1 to 200"),
])
async def test_a_bad_value_is_one_clear_error_and_nothing_is_stored(clean_state: TestStack, items: dict,
                                                                   message: str) -> None:
    async with PgStateStore.open(clean_state.db, A) as store:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{")):
            await store.save(items)
        assert await store.load() == {}
        with pytest.raises(ValueError, match="a string of 1 to 200"):
            await store.delete(["fine", ""])


async def test_each_bot_sees_and_changes_only_its_own_state(clean_state: TestStack) -> None:
    async with PgStateStore.open(clean_state.db, A) as a, PgStateStore.open(clean_state.db, B) as b:
        await a.save({"k": "a", "only_a": 1})
        await b.save({"k": "b"})
        await b.delete(["k", "only_a"])  # B's delete of A's keys removes only B's row
        assert await a.load() == {"k": "a", "only_a": 1}
        assert await b.load() == {}
        await b.save({"k": "b2"})
        assert (await a.load())["k"] == "a"

    with connect(clean_state, "strategy") as conn:
        with conn.transaction():  # acting as A: B's rows are invisible and out of reach
            conn.execute("SELECT set_config('trading.bot_id', %s, true)", (A,))
            assert conn.execute("SELECT bot_id, key FROM trading.strategy_state ORDER BY key").fetchall() == [
                (A, "k"), (A, "only_a")]
            assert conn.execute("UPDATE trading.strategy_state SET value = '1' WHERE bot_id = %s",
                                (B,)).rowcount == 0
            assert conn.execute("DELETE FROM trading.strategy_state WHERE bot_id = %s", (B,)).rowcount == 0
            assert conn.execute("UPDATE trading.strategy_state SET bot_id = %s WHERE bot_id = %s",
                                (A, A)).rowcount == 2  # its own rows, kept its own
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                conn.execute("SELECT set_config('trading.bot_id', %s, true)", (A,))
                conn.execute("INSERT INTO trading.strategy_state (bot_id, key, value) VALUES (%s, 'k', '1') "
                             "ON CONFLICT (bot_id, key) DO UPDATE SET value = EXCLUDED.value", (B,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():  # moving its own row to another bot
                conn.execute("SELECT set_config('trading.bot_id', %s, true)", (A,))
                conn.execute("UPDATE trading.strategy_state SET bot_id = %s WHERE bot_id = %s", (B, A))
        # Without naming a bot: nothing to see, nothing to write.
        assert conn.execute("SELECT count(*) FROM trading.strategy_state").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO trading.strategy_state (bot_id, key, value) VALUES (%s, 'x', '1')", (A,))

    for role in ("c2", "reconciler"):  # read every bot's state, write none
        with connect(clean_state, role) as conn:
            assert conn.execute("SELECT bot_id, key, value FROM trading.strategy_state ORDER BY 1, 2").fetchall() == [
                (A, "k", "a"), (A, "only_a", 1), (B, "k", "b2")]
            for sql in ("INSERT INTO trading.strategy_state (bot_id, key, value) VALUES ('lxalgo_001', 'z', '1')",
                        "UPDATE trading.strategy_state SET value = '2'", "DELETE FROM trading.strategy_state"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
    with connect(clean_state, "listener") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM trading.strategy_state")


async def test_concurrent_saves_are_atomic_and_never_deadlock(clean_state: TestStack) -> None:
    """Eight writers save the same ten keys (in opposite orders) and their own keys, while readers load:
    every load sees all ten keys from one save, and the end state is one save's, whole."""
    shared_keys = [f"s{i}" for i in range(10)]
    tasks, rounds = 8, 15
    mixed: list[dict] = []
    loads = 0
    async with PgStateStore.open(clean_state.db, A, max_size=4) as store:
        done = asyncio.Event()

        async def writer(t: int) -> None:
            for r in range(rounds):
                keys = shared_keys if t % 2 else list(reversed(shared_keys))
                await store.save({**{k: f"{t}:{r}" for k in keys}, f"own{t}": r})

        async def reader() -> None:
            nonlocal loads
            while not done.is_set():
                state = await store.load()
                tags = {state[k] for k in shared_keys if k in state}
                if tags and (len(tags) != 1 or not all(k in state for k in shared_keys)):
                    mixed.append(state)
                loads += 1

        readers = [asyncio.create_task(reader()) for _ in range(2)]
        await asyncio.gather(*(writer(t) for t in range(tasks)))
        done.set()
        await asyncio.gather(*readers)
        final = await store.load()
        retries = store.retries
    assert mixed == []
    assert loads > 10
    assert len({final[k] for k in shared_keys}) == 1
    assert {k: v for k, v in final.items() if k.startswith("own")} == {f"own{t}": rounds - 1 for t in range(tasks)}
    assert retries == 0  # rows are locked in one order: no deadlock to retry


async def _wait_for(predicate, what: str, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _strategy_clients_waiting(stack: TestStack) -> int:
    """Clients PgBouncer holds for want of a server (it queues them while PostgreSQL is down)."""
    dsn = stack.db.dsn("owner").replace(f"dbname={stack.db.postgres_db}", "dbname=pgbouncer")
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cur = conn.execute("SHOW POOLS")
        names = [d.name for d in cur.description or []]
        return sum(r[names.index("cl_waiting")] for r in cur.fetchall()
                   if r[names.index("user")] == "strategy_user")


@pytest.mark.parametrize("part", ["pgbouncer", "postgres"])
async def test_state_and_store_survive_a_restart(clean_state: TestStack, part: str) -> None:
    """State saved before the restart is there after it, and a save made while the part is down
    completes once it is back (the store retries on a lost connection)."""
    stack = clean_state
    async with PgStateStore.open(stack.db, A, retry_for_s=120) as store:
        await store.save({"before": Decimal("1.5"), "n": 1})
        stack.stop(part)
        try:
            pending = asyncio.create_task(store.save({"during": Decimal("2.5"), "n": 2}))
            # PgBouncer down: the store's connection fails and it retries. PostgreSQL down: PgBouncer
            # holds the save until a server is back.
            await _wait_for(lambda: store.retries >= 1 or pending.done() or (
                part == "postgres" and _strategy_clients_waiting(stack) > 0), "the save to hit the outage")
            assert not pending.done(), "the save did not wait for the database"
        finally:
            await asyncio.to_thread(stack.start, part)
        await asyncio.wait_for(pending, 120)
        assert await store.load() == {"before": "1.5", "during": "2.5", "n": 2}
    async with PgStateStore.open(stack.db, A) as again:
        assert await again.load() == {"before": "1.5", "during": "2.5", "n": 2}
