"""ShortSeller's persisted state: JSON out and back, strict on the way in."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from strategies.shortseller.signals import BarValues, DailyCrosses, ExitLevels, Regime
from strategies.shortseller.state import (
    EMPTY,
    PendingEntry,
    ShortSellerState,
    StateError,
    SymbolState,
    TradePlan,
    symbol_from_builtins,
    symbol_to_builtins,
)

T = datetime(2025, 5, 6, 10, 5, tzinfo=timezone.utc)
LEVELS = ExitLevels(stop_loss=D("2538.89"), take_profit=D("2388.81"), trail_distance=D("50.02"),
                    trail_activation=D("2451.35"))


def full_state() -> ShortSellerState:
    eth = SymbolState(
        last_bar_at=T,
        # an EMA computed as a float keeps every digit
        last_bar=BarValues(close=D("2501.37"), ema_fast=D(2505.123456789012), ema_slow=D("2519.5")),
        regime=Regime.ACTIVE,
        crosses=DailyCrosses(day=date(2025, 5, 6), count=12),
        last_entry_at=T - timedelta(minutes=59),
        position=TradePlan(entry_time=T - timedelta(minutes=59), entry_price=D("2501.37"), entry_qty=D("0.69"),
                           levels=LEVELS, ladder_steps_done=1, adopted=True,
                           entry_link_id="shortseller_001-entry-0a1b2c3d", fees=D("0.949"),
                           realized_pnl=D("7.5"), exit_reason="ladder"),
    )
    sol = SymbolState(regime=Regime.INACTIVE, last_entry_at=T - timedelta(hours=3),
                      pending_entry=PendingEntry(link_id="shortseller_001-entry-1z", decided_at=T, qty=D("4.8"),
                                                 levels=LEVELS))
    return ShortSellerState().with_symbol("ETHUSDT", eth).with_symbol("SOLUSDT", sol)


def test_state_round_trips_through_json_exactly() -> None:
    state = full_state()
    text = state.to_json()
    again = ShortSellerState.from_json(text)
    assert again == state
    assert again.symbol("ETHUSDT").last_bar.ema_fast == D(2505.123456789012)  # type: ignore[union-attr]
    assert again.symbol("ETHUSDT").position.entry_time == T - timedelta(minutes=59)  # type: ignore[union-attr]
    assert again.to_json() == text
    raw = json.loads(text)
    assert raw["symbols"]["ETHUSDT"]["position"]["entry_price"] == "2501.37"  # Decimals as strings
    assert raw["symbols"]["ETHUSDT"]["last_entry_at"] == "2025-05-06T09:06:00Z"


def test_unknown_symbols_read_as_empty_and_updates_do_not_touch_the_original() -> None:
    state = ShortSellerState()
    assert state.symbol("BTCUSDT") == EMPTY
    changed = state.with_symbol("BTCUSDT", SymbolState(regime=Regime.ACTIVE))
    assert state.symbols == {} and changed.symbol("BTCUSDT").regime is Regime.ACTIVE
    assert ShortSellerState.from_json("{}") == ShortSellerState()


@pytest.mark.parametrize(("raw", "message"), [
    ("nope", "JSON is malformed"),
    ('{"version": 2}', "state version 2 is not 1"),
    ('{"symbols": {"BTCUSDT": {"last_entry_at": "2025-05-06T10:00:00"}}}', "last_entry_at must be a UTC time"),
    ('{"symbols": {"BTCUSDT": {"last_entry_at": "2025-05-06T10:00:00+02:00"}}}', "last_entry_at must be a UTC time"),
    ('{"symbols": {"BTCUSDT": {"cooldown": 1}}}', "unknown field `cooldown`"),
    ('{"symbols": {"BTCUSDT": {"crosses": {"day": "2025-05-06", "count": 1.5}}}}', "Expected `int`, got `float`"),
    ('{"symbols": {"BTCUSDT": {"crosses": {"day": "2025-05-06", "count": -1}}}}', "must not be negative"),
    ('{"symbols": {"BTCUSDT": {"regime": "MAYBE"}}}', "Invalid enum value 'MAYBE'"),
    ('{"symbols": {"BTCUSDT": {"last_bar_at": "2025-05-06T10:00:00Z"}}}', "last_bar and last_bar_at go together"),
    ('{"symbols": {"BTCUSDT": {"position": {"entry_time": "2025-05-06T10:00:00Z", "entry_price": "0", '
     '"entry_qty": "1", "levels": {"stop_loss": "1", "take_profit": "1", "trail_distance": "1", '
     '"trail_activation": null}}}}}', "entry_price and entry_qty must be positive"),
])
def test_unreadable_state_is_one_clear_error(raw: str, message: str) -> None:
    with pytest.raises(StateError) as err:
        ShortSellerState.from_json(raw)
    line = str(err.value)
    assert line.startswith("ShortSeller state is unreadable: ") and message in line and "\n" not in line


def test_records_refuse_local_times_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="entry_time must be a UTC time"):
        TradePlan(entry_time=datetime(2025, 5, 6, 10, 0), entry_price=D(1), entry_qty=D(1), levels=LEVELS)


def test_one_symbol_goes_through_plain_json_values_for_a_key_value_store() -> None:
    for symbol in ("ETHUSDT", "SOLUSDT"):
        st = full_state().symbol(symbol)
        plain = json.loads(json.dumps(symbol_to_builtins(st)))
        assert symbol_from_builtins(plain) == st
    with pytest.raises(StateError, match=r"Invalid enum value 'X' - at `\$.regime`"):
        symbol_from_builtins({"regime": "X"})
    with pytest.raises(StateError, match="decided_at must be a UTC time"):
        symbol_from_builtins({"pending_entry": {"link_id": "x", "decided_at": "2025-05-06T10:00:00", "qty": "1",
                                                "levels": {"stop_loss": "2", "take_profit": "1", "trail_distance": "1",
                                                           "trail_activation": None}}})
