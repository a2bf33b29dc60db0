"""A live bot (`python -m strategies.run`) as a real process, and what the live tests compare with."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from services.bybit_sim.handle import VenueAdmin
from shared.redis_client import redis_for

from strategies.runtime.candles import Candles
from strategies.runtime.model import STOP_REASONS
from strategies.runtime.orders import reason_of

if TYPE_CHECKING:
    from tests.support.stack import TestStack

REPO = Path(__file__).resolve().parents[2]
FIVE_MIN_MS = 300_000


class BotProcess:
    def __init__(self, bot: str, settings: Sequence[str], env: dict[str, str]) -> None:
        self.args = [sys.executable, "-m", "strategies.run", bot] + [a for s in settings for a in ("--set", s)]
        self.env = env
        self._tmp = tempfile.TemporaryDirectory(prefix="bot_")
        self.log_path = Path(self._tmp.name) / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
        self._tmp.cleanup()


async def wait_for(pred: Any, timeout_s: float, what: str, every_s: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await pred()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)


def candles_from_rest(rows: list[list[Any]], symbol: str) -> Candles:
    """`/v5/market/kline` rows (any order) -> 5-minute Candles, oldest first, one per start."""
    by_start = {int(r[0]): r for r in rows}
    starts = sorted(by_start)
    col = lambda i: np.array([float(by_start[s][i]) for s in starts])  # noqa: E731
    return Candles(symbol, "5m", np.array(starts, dtype=np.int64), col(1), col(2), col(3), col(4), col(5))


@dataclass(frozen=True)
class FillRow:
    """A fill as both sides are compared: the candle it happened in, side, qty, price, reason."""

    candle_ms: int
    side: str
    qty: Decimal
    price: Decimal
    reason: str
    link_id: str


def live_fills(executions: list[dict[str, Any]], bot_id: str) -> list[FillRow]:
    """The venue's executions of the account (admin API with `venueTimeMs`), trades only."""
    out = []
    for e in executions:
        if e["execType"] != "Trade":
            continue
        t = int(e["venueTimeMs"])
        link = e.get("orderLinkId") or ""
        reason = STOP_REASONS.get(e.get("stopOrderType") or "") or reason_of(link, bot_id) or "manual"
        out.append(FillRow(t - t % FIVE_MIN_MS, e["side"], Decimal(e["execQty"]), Decimal(e["execPrice"]), reason,
                           link if reason not in STOP_REASONS.values() else ""))
    return out


def backtest_fills(fills: Sequence[Any]) -> list[FillRow]:
    return [FillRow(f.time_ms - f.time_ms % FIVE_MIN_MS, f.side, f.qty, f.price, f.reason,
                    f.order_link_id if f.reason not in STOP_REASONS.values() else "") for f in fills]


@dataclass(frozen=True)
class TradeRow:
    side: str
    qty: Decimal
    entry_candle_ms: int
    entry_price: Decimal
    exit_candle_ms: int
    exit_price: Decimal
    exit_reason: str


def round_trips(fills: Sequence[FillRow]) -> list[TradeRow]:
    """Flat-to-flat trades from one symbol's fills (each fill here opens or closes a whole position)."""
    out: list[TradeRow] = []
    pos = Decimal(0)
    entry: FillRow | None = None
    for f in fills:
        signed = f.qty if f.side == "Buy" else -f.qty
        if pos == 0:
            entry = f
        pos += signed
        if pos == 0 and entry is not None:
            out.append(TradeRow("long" if entry.side == "Buy" else "short", entry.qty, entry.candle_ms,
                                entry.price, f.candle_ms, f.price, f.reason))
            entry = None
    return out


def dump(rows: Sequence[Any]) -> str:
    return json.dumps([r.__dict__ for r in rows], default=str, indent=0)


# --- the bot's state and events, the stepped venue's clock ---------------------------------------

def state_of(stack: TestStack, bot_id: str) -> dict[str, Any]:
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        return read_state(conn, bot_id)


def read_state(conn: psycopg.Connection[Any], bot_id: str) -> dict[str, Any]:
    """The bot's saved state on an open connection (a poll loop keeps one: a connection costs ~10 ms)."""
    rows = conn.execute("SELECT key, value FROM trading.strategy_state WHERE bot_id = %s", (bot_id,)).fetchall()
    return {k: v for k, v in rows}


async def events(stack: TestStack, bot_id: str) -> list[tuple[str, dict[str, Any]]]:
    r = redis_for(stack.redis, 0)
    try:
        return [(f["kind"], json.loads(f["data"])) for _, f in await r.xrange(f"events:{bot_id}")]
    finally:
        await r.aclose()


async def count_started(stack: TestStack, bot_id: str) -> int:
    return sum(1 for kind, _ in await events(stack, bot_id) if kind == "started")


async def started_n(stack: TestStack, bot_id: str, n: int) -> bool:
    return await count_started(stack, bot_id) >= n


async def hold(admin: VenueAdmin) -> int | None:
    c = await admin.clock()
    return int(c["hold_at_ms"]) if c["held"] else None


async def done(stack: TestStack, bot_id: str, candle_start: int, symbol: str = "BTCUSDT") -> bool:
    """The bot handled this candle and sent what it decided (its outbox is empty)."""
    st = state_of(stack, bot_id)
    return st.get(f"_bar:{symbol}:5m") == candle_start and "_outbox" not in st


async def step_to_next(admin: VenueAdmin, at: int) -> int:
    await admin.step()
    nxt = at + FIVE_MIN_MS
    await wait_for(lambda: _held_at(admin, nxt), 20, f"the venue to hold at {nxt}", every_s=0.01)
    return nxt


async def _held_at(admin: VenueAdmin, at: int) -> bool:
    return await hold(admin) == at


