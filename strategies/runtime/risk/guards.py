"""Risk guards: pure decisions over (time, equity, positions), the same in backtest and live.

No IO and no clock: the runtime passes ``now`` (tz-aware UTC) and the bot's equity, acts on the
returned events (flatten, relay to Telegram) and persists ``to_state()`` (a JSON-able dict).

- ``on_equity(now, equity)`` rolls the day/week/month references, lifts guards whose time or
  recovery has come, trips guards whose loss is reached, and returns the events.
- ``check_entry(now, symbol, notional_usdt, open_positions)`` returns a ``Refusal`` (counted per
  code) or None; ``record_entry(now, symbol)`` after an entry is placed.
- ``size_factor(now)``: the smallest factor of the active size-scaling guards (1 if none).
- ``kill`` / ``release_kill`` / ``resume``: the operator's switches.

A window's reference is the equity of the first update at or after the window's start (00:00 UTC,
Monday 00:00 UTC, the 1st 00:00 UTC), so the runtime calls ``on_equity`` at least on those
boundaries (a timer) and on every bar. A loss exactly at a threshold trips it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from strategies.runtime.risk import calendar as cal
from strategies.runtime.risk.config import Action, EquityGuard, RiskConfig, Until, GuardWindow
from strategies.runtime.risk.events import EventKind, GuardEvent, Refusal, RefusalCode

STATE_VERSION = 1
KILL_SWITCH = "kill_switch"

_WINDOW_START: dict[GuardWindow, Callable[[datetime], datetime]] = {
    GuardWindow.DAY: cal.day_start, GuardWindow.WEEK: cal.week_start, GuardWindow.MONTH: cal.month_start,
}
_WINDOW_TEXT = {GuardWindow.DAY: "the day's start", GuardWindow.WEEK: "the week's start (Monday)",
                GuardWindow.MONTH: "the month's start", GuardWindow.PEAK: "the equity peak"}
_UNTIL: dict[Until, Callable[[datetime], datetime]] = {
    Until.NEXT_DAY: cal.next_day, Until.NEXT_WEEK: cal.next_week, Until.NEXT_MONTH: cal.next_month,
}
_PCT = Decimal("0.01")


@dataclass(slots=True)
class _Reference:
    start_at: datetime  # the window's start
    start_equity: Decimal
    low_equity: Decimal


@dataclass(slots=True)
class _Trip:
    since: datetime
    until: datetime | None


def _money(v: object, name: str) -> Decimal:
    if not isinstance(v, Decimal) or not v.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {v!r}")
    return v


class RiskGuards:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._guards = {g.name: g for g in config.equity_guards}
        self._last_update: datetime | None = None
        self._equity: Decimal | None = None
        self._peak: Decimal | None = None
        self._refs: dict[GuardWindow, _Reference] = {}
        self._tripped: dict[str, _Trip] = {}
        self._kill: tuple[datetime, str] | None = None
        self._last_entry: dict[str, datetime] = {}
        self._counter_day: datetime | None = None
        self._counters: dict[str, int] = {}
        self._refusals: dict[str, int] = {}

    # ---- equity and time

    def on_time(self, now: datetime) -> list[GuardEvent]:
        """Lift the guards whose time has come (also done by ``on_equity``)."""
        now = cal.require_utc(now)
        events = []
        for name, trip in list(self._tripped.items()):
            if trip.until is not None and trip.until <= now:
                del self._tripped[name]
                events.append(GuardEvent(EventKind.RESTORED, name, now, f"{name}: lifted at {_hm(trip.until)}"))
        return events

    def on_equity(self, now: datetime, equity: Decimal) -> list[GuardEvent]:
        now = cal.require_utc(now)
        equity = _money(equity, "equity")
        if self._last_update is not None and now < self._last_update:
            raise ValueError(f"time went backwards: {now.isoformat()} after {self._last_update.isoformat()}")
        events = self.on_time(now)
        self._last_update, self._equity = now, equity
        self._peak = equity if self._peak is None else max(self._peak, equity)
        for window, start_of in _WINDOW_START.items():
            start_at = start_of(now)
            ref = self._refs.get(window)
            if ref is None or ref.start_at != start_at:
                self._refs[window] = _Reference(start_at, equity, equity)
                events += self._lift_recovery(now, window, "its window rolled over")
            else:
                ref.low_equity = min(ref.low_equity, equity)
        for guard in self._guards.values():
            if guard.name in self._tripped:
                if guard.until is Until.RECOVERY:
                    ref = self._refs[guard.window]
                    level = ref.start_equity - guard.recovery_fraction * (ref.start_equity - ref.low_equity)
                    if equity >= level:
                        del self._tripped[guard.name]
                        events.append(GuardEvent(EventKind.RESTORED, guard.name, now,
                                                 f"{guard.name}: equity {equity} is back to {level} or more"))
                continue
            event = self._maybe_trip(now, equity, guard)
            if event is not None:
                events.append(event)
        return events

    def _lift_recovery(self, now: datetime, window: GuardWindow, why: str) -> list[GuardEvent]:
        events = []
        for name in list(self._tripped):
            guard = self._guards[name]
            if guard.window is window and guard.until is Until.RECOVERY:
                del self._tripped[name]
                events.append(GuardEvent(EventKind.RESTORED, name, now, f"{name}: lifted, {why}"))
        return events

    def _maybe_trip(self, now: datetime, equity: Decimal, guard: EquityGuard) -> GuardEvent | None:
        reference = self._peak if guard.window is GuardWindow.PEAK else self._refs[guard.window].start_equity
        if reference is None or reference <= 0:
            return None
        loss_pct = (reference - equity) * 100 / reference
        if loss_pct < guard.loss_pct:
            return None
        until = _UNTIL[guard.until](now) if guard.until in _UNTIL else None
        self._tripped[guard.name] = _Trip(now, until)
        if until is not None:
            lifts = f"until {_hm(until)}"
        elif guard.until is Until.RECOVERY:
            lifts = f"until equity recovers to the start less {guard.recovery_fraction} x the worst loss"
        else:
            lifts = "until resumed by the operator"
        what = {Action.BLOCK_ENTRIES: "no entries", Action.SCALE_SIZE: f"size x {guard.size_factor}",
                Action.HALT: "halted", Action.FLATTEN_AND_HALT: "closing all positions, halted"}[guard.action]
        reason = (f"{guard.name}: equity {equity} is down {loss_pct.quantize(_PCT)}% from "
                  f"{_WINDOW_TEXT[guard.window]} {reference} (limit {guard.loss_pct}%); {what} {lifts}")
        kind = {Action.BLOCK_ENTRIES: EventKind.TRIPPED, Action.SCALE_SIZE: EventKind.SIZE_SCALED,
                Action.HALT: EventKind.HALTED, Action.FLATTEN_AND_HALT: EventKind.HALTED}[guard.action]
        return GuardEvent(kind, guard.name, now, reason, flatten=guard.action is Action.FLATTEN_AND_HALT,
                          until=until,
                          size_factor=guard.size_factor if guard.action is Action.SCALE_SIZE else None)

    def _active(self, now: datetime) -> list[EquityGuard]:
        return [self._guards[name] for name, trip in self._tripped.items()
                if trip.until is None or now < trip.until]

    def size_factor(self, now: datetime) -> Decimal:
        now = cal.require_utc(now)
        factors = [g.size_factor for g in self._active(now) if g.action is Action.SCALE_SIZE]
        return min(factors, default=Decimal(1))

    # ---- operator switches

    def kill(self, now: datetime, reason: str) -> list[GuardEvent]:
        """Flatten and halt until ``release_kill``."""
        now = cal.require_utc(now)
        if self._kill is not None:
            return []
        self._kill = (now, reason)
        return [GuardEvent(EventKind.HALTED, KILL_SWITCH, now, f"kill switch: {reason}", flatten=True)]

    def release_kill(self, now: datetime) -> list[GuardEvent]:
        now = cal.require_utc(now)
        if self._kill is None:
            return []
        self._kill = None
        return [GuardEvent(EventKind.RESTORED, KILL_SWITCH, now, "kill switch released")]

    def resume(self, now: datetime, guard: str) -> list[GuardEvent]:
        """Lift a tripped equity guard by hand (the only way out of ``Until.MANUAL``)."""
        now = cal.require_utc(now)
        if guard not in self._guards:
            raise ValueError(f"no equity guard named {guard!r}; have {sorted(self._guards)}")
        if self._tripped.pop(guard, None) is None:
            return []
        if self._guards[guard].window is GuardWindow.PEAK and self._equity is not None:
            self._peak = self._equity  # measure the next drawdown from here, or it trips again at once
        return [GuardEvent(EventKind.RESTORED, guard, now, f"{guard}: resumed by the operator")]

    # ---- entries

    def check_entry(self, now: datetime, symbol: str, notional_usdt: Decimal,
                    open_positions: Mapping[str, Decimal]) -> Refusal | None:
        """May the bot open (or add to) ``symbol`` for ``notional_usdt``? ``open_positions``: the
        bot's position notional per symbol (sign ignored; zero means flat). A refusal is counted."""
        now = cal.require_utc(now)
        notional = _money(notional_usdt, "notional_usdt")
        if notional <= 0:
            raise ValueError(f"notional_usdt must be > 0, got {notional}")
        refusal = self._refusal(now, symbol, notional, open_positions)
        return None if refusal is None else self._counted(refusal)

    def _counted(self, refusal: Refusal) -> Refusal:
        self._refusals[refusal.code.value] = self._refusals.get(refusal.code.value, 0) + 1
        return refusal

    def _refusal(self, now: datetime, symbol: str, notional: Decimal,
                 open_positions: Mapping[str, Decimal]) -> Refusal | None:
        c = self.config
        if self._kill is not None:
            since, why = self._kill
            return Refusal(RefusalCode.KILL_SWITCH, f"kill switch since {_hm(since)}: {why}")
        active = self._active(now)
        for code, actions in ((RefusalCode.HALTED, (Action.HALT, Action.FLATTEN_AND_HALT)),
                              (RefusalCode.ENTRIES_BLOCKED, (Action.BLOCK_ENTRIES,))):
            names = [g.name for g in active if g.action in actions]
            if names:
                return Refusal(code, f"{code.replace('_', ' ')} by {', '.join(names)}")
        held = {s: abs(_money(v, f"open_positions[{s}]")) for s, v in open_positions.items() if v != 0}
        if c.one_position_per_symbol and symbol in held:
            return Refusal(RefusalCode.SYMBOL_HAS_POSITION, f"{symbol} already has a position")
        if c.max_open_positions is not None and symbol not in held and len(held) >= c.max_open_positions:
            return Refusal(RefusalCode.MAX_OPEN_POSITIONS,
                           f"{len(held)} positions open, at most {c.max_open_positions}")
        if c.max_order_notional_usdt is not None and notional > c.max_order_notional_usdt:
            return Refusal(RefusalCode.MAX_ORDER_NOTIONAL,
                           f"order {notional} USDT over the {c.max_order_notional_usdt} USDT limit")
        after = held.get(symbol, Decimal(0)) + notional
        if c.max_symbol_notional_usdt is not None and after > c.max_symbol_notional_usdt:
            return Refusal(RefusalCode.MAX_SYMBOL_NOTIONAL,
                           f"{symbol} would hold {after} USDT, over the {c.max_symbol_notional_usdt} USDT limit")
        if c.max_gross_leverage is not None:
            gross = sum(held.values(), Decimal(0)) + notional
            if self._equity is None or self._equity <= 0:
                return Refusal(RefusalCode.MAX_GROSS_LEVERAGE,
                               "no positive equity known to measure leverage against")
            if gross > c.max_gross_leverage * self._equity:
                return Refusal(RefusalCode.MAX_GROSS_LEVERAGE,
                               f"{gross} USDT of positions on {self._equity} USDT equity "
                               f"is over {c.max_gross_leverage}x")
        last = self._last_entry.get(symbol)
        if last is not None and c.symbol_cooldown is not None and now < last + c.symbol_cooldown:
            return Refusal(RefusalCode.SYMBOL_COOLDOWN,
                           f"{symbol} entered at {_hm(last)}; cooldown until {_hm(last + c.symbol_cooldown)}")
        if last is not None and c.entry_block_h is not None:
            block = cal.block_start(now, c.entry_block_h)
            if cal.block_start(last, c.entry_block_h) == block:
                return Refusal(RefusalCode.ENTRY_BLOCK,
                               f"{symbol} already entered in the {c.entry_block_h} h block from {_hm(block)}")
        if c.max_entries_per_day is not None and self.count(now, "entries") >= c.max_entries_per_day:
            return Refusal(RefusalCode.DAILY_ENTRY_LIMIT, f"{c.max_entries_per_day} entries today already")
        return None

    def check_leverage(self, leverage: Decimal) -> Refusal | None:
        """May the exchange leverage be set to ``leverage``? A refusal is counted."""
        lev = _money(leverage, "leverage")
        if self.config.max_leverage is not None and lev > self.config.max_leverage:
            return self._counted(Refusal(RefusalCode.MAX_LEVERAGE,
                                         f"leverage {lev} over the {self.config.max_leverage} cap"))
        return None

    def record_entry(self, now: datetime, symbol: str) -> None:
        """An entry order on ``symbol`` was placed: starts its cooldown and block, counts it."""
        now = cal.require_utc(now)
        self._last_entry[symbol] = now
        self.increment(now, "entries")

    # ---- daily counters (reset 00:00 UTC)

    def _roll_counters(self, now: datetime) -> None:
        day = cal.day_start(now)
        if self._counter_day != day:
            self._counter_day, self._counters = day, {}

    def increment(self, now: datetime, key: str) -> int:
        self._roll_counters(cal.require_utc(now))
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key]

    def count(self, now: datetime, key: str) -> int:
        self._roll_counters(cal.require_utc(now))
        return self._counters.get(key, 0)

    # ---- introspection

    @property
    def refusal_counts(self) -> dict[str, int]:
        return dict(self._refusals)

    def tripped(self, now: datetime) -> list[str]:
        return [g.name for g in self._active(cal.require_utc(now))]

    @property
    def killed(self) -> bool:
        return self._kill is not None

    def reference(self, window: GuardWindow) -> Decimal | None:
        if window is GuardWindow.PEAK:
            return self._peak
        ref = self._refs.get(window)
        return None if ref is None else ref.start_equity

    # ---- persistence

    def to_state(self) -> dict[str, Any]:
        iso = _iso
        return {
            "version": STATE_VERSION,
            "last_update": iso(self._last_update),
            "equity": _dec(self._equity),
            "peak": _dec(self._peak),
            "windows": {w.value: {"start_at": iso(r.start_at), "start_equity": str(r.start_equity),
                                  "low_equity": str(r.low_equity)} for w, r in self._refs.items()},
            "tripped": {n: {"since": iso(t.since), "until": iso(t.until)} for n, t in self._tripped.items()},
            "kill_switch": None if self._kill is None else {"since": iso(self._kill[0]), "reason": self._kill[1]},
            "last_entry": {s: iso(t) for s, t in self._last_entry.items()},
            "counter_day": iso(self._counter_day),
            "counters": dict(self._counters),
            "refusals": dict(self._refusals),
        }

    @classmethod
    def from_state(cls, config: RiskConfig, state: Mapping[str, Any]) -> RiskGuards:
        """Restore ``to_state()``; malformed state raises ValueError naming the field."""
        g = cls(config)
        try:
            if state["version"] != STATE_VERSION:
                raise ValueError(f"state version {state['version']!r}, expected {STATE_VERSION}")
            g._last_update = _parse_time(state["last_update"], "last_update")
            g._equity = _parse_dec(state["equity"], "equity")
            g._peak = _parse_dec(state["peak"], "peak")
            for w, r in state["windows"].items():
                window = GuardWindow(w)
                if window is GuardWindow.PEAK:
                    raise ValueError("windows: peak has no window reference")
                g._refs[window] = _Reference(_time(r["start_at"], f"windows.{w}.start_at"),
                                             _dec_req(r["start_equity"], f"windows.{w}.start_equity"),
                                             _dec_req(r["low_equity"], f"windows.{w}.low_equity"))
            for name, t in state["tripped"].items():
                if name not in g._guards:
                    raise ValueError(f"tripped guard {name!r} is not in the configuration "
                                     "(resume it before removing it)")
                g._tripped[name] = _Trip(_time(t["since"], f"tripped.{name}.since"),
                                         _parse_time(t["until"], f"tripped.{name}.until"))
            if state["kill_switch"] is not None:
                g._kill = (_time(state["kill_switch"]["since"], "kill_switch.since"),
                           str(state["kill_switch"]["reason"]))
            g._last_entry = {str(s): _time(t, f"last_entry.{s}") for s, t in state["last_entry"].items()}
            g._counter_day = _parse_time(state["counter_day"], "counter_day")
            g._counters = {str(k): _count(v, f"counters.{k}") for k, v in state["counters"].items()}
            g._refusals = {RefusalCode(k).value: _count(v, f"refusals.{k}") for k, v in state["refusals"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed risk state: {exc!r}") from exc
        return g


def _hm(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dec(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _parse_time(v: object, name: str) -> datetime | None:
    return None if v is None else _time(v, name)


def _time(v: object, name: str) -> datetime:
    if v is None:
        raise ValueError(f"{name} is missing")
    if not isinstance(v, str):
        raise ValueError(f"{name} must be an ISO time string, got {v!r}")
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError as exc:
        raise ValueError(f"{name} is not an ISO time: {v!r}") from exc
    return cal.require_utc(parsed, name)


def _parse_dec(v: object, name: str) -> Decimal | None:
    return None if v is None else _dec_req(v, name)


def _dec_req(v: object, name: str) -> Decimal:
    if v is None:
        raise ValueError(f"{name} is missing")
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a decimal string, got {v!r}")
    try:
        return _money(Decimal(v), name)
    except ArithmeticError as exc:
        raise ValueError(f"{name} is not a decimal: {v!r}") from exc


def _count(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name} must be a count >= 0, got {v!r}")
    return v
