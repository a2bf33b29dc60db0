"""ShortSeller's handlers on hand-made events: start-up with what the exchange holds (adoption,
a position closed while away, a lost entry), the 24 h clock of an adopted position, a refused entry
order, a long it did not open. The runtime's Context and Runtime are the real ones; the account and
the bar feed are small in-memory implementations of their protocols."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from strategies.backtest.data import sim_instruments
from strategies.runtime.context import Context
from strategies.runtime.model import Bar, Position, Rejection
from strategies.runtime.orders import PlaceOrder, SetLeverage, TradingStop
from strategies.runtime.runtime import Runtime
from strategies.runtime.state import StrategyState
from strategies.shortseller.config import parse_config
from strategies.shortseller.signals import ExitLevels
from strategies.shortseller.state import PendingEntry, SymbolState, TradePlan, symbol_from_builtins, symbol_to_builtins
from strategies.shortseller.strategy import ShortSeller

T0 = datetime(2025, 5, 6, 12, 0, tzinfo=timezone.utc)
MS = int(T0.timestamp() * 1000)
BAR_MS = 300_000


@dataclass
class Account:
    positions: dict[str, Position] = field(default_factory=dict)
    wallet: D = D(10000)
    feed: Feed | None = None  # last prices are the last closes pushed to it

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol, Position(symbol))

    def equity(self) -> D:
        return self.wallet

    def balance(self) -> D:
        return self.wallet

    def open_orders(self, symbol: str | None = None) -> list[PlaceOrder]:
        return []

    def last_price(self, symbol: str) -> D:
        assert self.feed is not None
        return D(repr(self.feed.bars[(symbol, "5m")][-1].close))


@dataclass
class Feed:
    """Bars and EMA values pushed by the test, newest last."""

    bars: dict[tuple[str, str], list[Bar]] = field(default_factory=dict)
    values: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)

    def push(self, bar: Bar, ema_fast: float, ema_slow: float) -> None:
        key = (bar.symbol, bar.interval)
        self.bars.setdefault(key, []).append(bar)
        vals = self.values.setdefault(key, {"ema_fast": [], "ema_slow": []})
        vals["ema_fast"].append(ema_fast)
        vals["ema_slow"].append(ema_slow)

    def history(self, key: tuple[str, str]) -> list[Bar]:
        return self.bars.get(key, [])

    def value(self, symbol: str, interval: str, name: str, ago: int = 0) -> float:
        vals = self.values.get((symbol, interval), {}).get(name, [])
        return vals[-1 - ago] if ago < len(vals) else float("nan")


def make(positions: dict[str, Position] | None = None, state: dict[str, object] | None = None,
         env: dict[str, str] | None = None) -> tuple[Runtime, Context, Feed]:
    feed = Feed()
    account = Account(positions or {}, feed=feed)
    strategy = ShortSeller(parse_config(env or {}))
    ctx = Context("shortseller_001", feed, account, sim_instruments(), StrategyState(state or {}))
    return Runtime(strategy, ctx), ctx, feed


def bar(symbol: str, close_ms: int, close: float) -> Bar:
    return Bar(symbol, "5m", close_ms - BAR_MS, close_ms, close, close, close, close, 1.0)


def sym_state(ctx: Context, symbol: str) -> SymbolState:
    return symbol_from_builtins(ctx.state.get(f"symbol:{symbol}"))


def test_start_sets_leverage_and_adopts_a_short_with_the_exchanges_time() -> None:
    opened = MS - 3 * 3_600_000
    rt, ctx, _ = make({"BTCUSDT": Position("BTCUSDT", D("-0.010"), D("100000.0"), opened_ms=opened)})
    rt.start(MS)
    intents = [d.intent for d in rt.drain()]
    assert [i for i in intents if isinstance(i, SetLeverage)] == [
        SetLeverage(s, D(10)) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]
    assert [i for i in intents if isinstance(i, TradingStop)] == [
        TradingStop("BTCUSDT", D("101000.0"), D("97000.0"), D("1000.0"), D("98000.0"))]
    plan = sym_state(ctx, "BTCUSDT").position
    assert plan is not None and plan.adopted and plan.entry_qty == D("0.010")
    assert plan.entry_time == T0 - timedelta(hours=3)  # not "now": the 24 h clock keeps running
    assert sym_state(ctx, "BTCUSDT").last_entry_at == plan.entry_time
    assert [n.kind for n in ctx.notices] == ["adopted"]


def test_an_adopted_position_is_closed_after_24_h_from_the_exchanges_time() -> None:
    opened = MS - 24 * 3_600_000
    pos = Position("BTCUSDT", D("-0.010"), D("100000.0"), opened_ms=opened, stop_loss=D("101000.0"),
                   take_profit=D("97000.0"))
    rt, ctx, feed = make({"BTCUSDT": pos})
    rt.start(MS)
    rt.drain()
    for close_ms in (MS, MS + BAR_MS):  # 24 h 00 held: stays; 24 h 05: closed bot-side
        b = bar("BTCUSDT", close_ms, 99900.0)
        feed.push(b, 100100.0, 100400.0)  # regime ACTIVE, no stop or target reached
        rt.bar(b)
        orders = [d.intent for d in rt.drain()]
        if close_ms == MS:
            assert orders == []
    assert len(orders) == 1 and isinstance(orders[0], PlaceOrder)
    assert (orders[0].side, orders[0].qty, orders[0].reduce_only, orders[0].reason) == ("Buy", D("0.010"), True, "hold")


def test_start_forgets_a_position_closed_while_away_and_an_entry_that_never_filled() -> None:
    levels = ExitLevels(stop_loss=D("101000.0"), take_profit=D("97000.0"), trail_distance=D("1000.0"),
                        trail_activation=D("98000.0"))
    state = {
        "symbol:BTCUSDT": symbol_to_builtins(SymbolState(position=TradePlan(
            entry_time=T0 - timedelta(hours=2), entry_price=D("100000.0"), entry_qty=D("0.010"), levels=levels))),
        "symbol:ETHUSDT": symbol_to_builtins(SymbolState(pending_entry=PendingEntry(
            link_id="shortseller_001-entry-7", decided_at=T0 - timedelta(minutes=5), qty=D("1"), levels=levels))),
    }
    rt, ctx, _ = make(state=state)
    rt.start(MS)
    assert sym_state(ctx, "BTCUSDT").position is None
    assert sym_state(ctx, "ETHUSDT").pending_entry is None
    assert [(n.kind, n.data["symbol"], n.data["reason"]) for n in ctx.notices] == [
        ("exit", "BTCUSDT", "closed_while_away")]


def cross_bars(rt: Runtime, feed: Feed, symbol: str) -> list[object]:
    """Two bars: above both EMAs, then below both (a cross of each, regime ACTIVE). The decisions."""
    out = []
    for close_ms, close in ((MS, 101.0), (MS + BAR_MS, 99.0)):
        b = bar(symbol, close_ms, close)
        feed.push(b, 100.0, 100.5)
        rt.bar(b)
        out += [d.intent for d in rt.drain()]
    return out


def test_an_entry_is_a_market_sell_with_stop_and_target_and_a_refused_one_frees_the_symbol() -> None:
    rt, ctx, feed = make()
    rt.start(MS - BAR_MS)
    rt.drain()
    orders = cross_bars(rt, feed, "SOLUSDT")
    assert len(orders) == 1 and isinstance(orders[0], PlaceOrder)
    o = orders[0]
    # 10,000 x 7 % x 10 = 7,000 USDT at 99 = 70.70 -> 70.7 SOL; SOL: stop 1.5 %, target 6 %
    assert (o.side, o.qty, o.reduce_only, o.stop_loss, o.take_profit) == ("Sell", D("70.7"), False, D("100.480"), D("93.060"))
    st = sym_state(ctx, "SOLUSDT")
    assert st.pending_entry is not None and st.pending_entry.link_id == o.order_link_id
    assert st.crosses is not None and st.crosses.count == 2
    rt.rejected(Rejection(MS + BAR_MS, "SOLUSDT", o.order_link_id, 110007, "ab not enough for new order"))
    assert sym_state(ctx, "SOLUSDT").pending_entry is None


def test_a_long_it_did_not_open_is_reported_and_blocks_entries() -> None:
    rt, ctx, feed = make({"ETHUSDT": Position("ETHUSDT", D("1.00"), D("2500.00"), opened_ms=MS)})
    rt.start(MS - BAR_MS)
    assert [n.kind for n in ctx.notices] == ["unexpected_position"]
    rt.drain()
    assert cross_bars(rt, feed, "ETHUSDT") == []
    assert ctx.refusals["shortseller_not_flat"] == 1


def test_a_bar_delivered_twice_is_decided_once() -> None:
    rt, ctx, feed = make()
    rt.start(MS - BAR_MS)
    rt.drain()
    cross_bars(rt, feed, "BTCUSDT")
    before = sym_state(ctx, "BTCUSDT")
    rt.bar(feed.bars[("BTCUSDT", "5m")][-1])
    assert rt.drain() == [] and sym_state(ctx, "BTCUSDT") == before


def test_the_environments_per_symbol_settings_reach_the_orders() -> None:
    env = {"SHORTSELLER_SOLUSDT_STOP_LOSS_PCT": "2", "SHORTSELLER_TAKE_PROFIT_PCT": "5",
           "SHORTSELLER_WALLET_FRACTION_PCT": "3.5"}
    rt, ctx, feed = make(env=env)
    rt.start(MS - BAR_MS)
    rt.drain()
    (o,) = cross_bars(rt, feed, "SOLUSDT")
    # 10,000 x 3.5 % x 10 = 3,500 USDT at 99 -> 35.3 SOL; stop 99 x 1.02, target 99 x 0.95
    assert (o.qty, o.stop_loss, o.take_profit) == (D("35.3"), D("100.980"), D("94.050"))


def test_an_adopted_short_with_the_entry_orders_stop_and_target_gets_its_trailing_stop() -> None:
    """Killed between the entry's fill and its handling: the short carries the entry order's stop and
    target (from the decision close) but no trailing stop. Adoption sets all three from its price."""
    pos = Position("BTCUSDT", D("-0.010"), D("100000.0"), opened_ms=MS - BAR_MS, stop_loss=D("101100.0"),
                   take_profit=D("96900.0"))
    rt, _, _ = make({"BTCUSDT": pos})
    rt.start(MS)
    stops = [d.intent for d in rt.drain() if isinstance(d.intent, TradingStop)]
    assert stops == [TradingStop("BTCUSDT", D("101000.0"), D("97000.0"), D("1000.0"), D("98000.0"))]


def test_a_known_short_without_its_trailing_stop_gets_its_stops_again_at_start() -> None:
    """Killed after the entry's fill was handled (the plan saved) but before its trading-stop reached
    the exchange: the plan's stops are set again, trailing stop included."""
    levels = ExitLevels(stop_loss=D("101000.0"), take_profit=D("97000.0"), trail_distance=D("1000.0"),
                        trail_activation=D("98000.0"))
    state = {"symbol:BTCUSDT": symbol_to_builtins(SymbolState(position=TradePlan(
        entry_time=T0 - timedelta(minutes=5), entry_price=D("100000.0"), entry_qty=D("0.010"), levels=levels)))}
    pos = Position("BTCUSDT", D("-0.010"), D("100000.0"), opened_ms=MS - BAR_MS, stop_loss=D("101100.0"),
                   take_profit=D("96900.0"))
    rt, _, _ = make({"BTCUSDT": pos}, state=state)
    rt.start(MS)
    stops = [d.intent for d in rt.drain() if isinstance(d.intent, TradingStop)]
    assert stops == [TradingStop("BTCUSDT", D("101000.0"), D("97000.0"), D("1000.0"), D("98000.0"))]


def test_an_adopted_short_with_all_its_stops_keeps_them() -> None:
    """Stops already set after the fill (a trailing stop among them, perhaps already trailing): left alone."""
    pos = Position("BTCUSDT", D("-0.010"), D("100000.0"), opened_ms=MS - BAR_MS, stop_loss=D("99500.0"),
                   take_profit=D("97000.0"), trailing_stop=D("1000.0"), trailing_active_price=D("98000.0"))
    rt, ctx, _ = make({"BTCUSDT": pos})
    rt.start(MS)
    assert [d.intent for d in rt.drain() if isinstance(d.intent, TradingStop)] == []
    plan = sym_state(ctx, "BTCUSDT").position
    assert plan is not None and plan.adopted
