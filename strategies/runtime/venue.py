"""The seam between a runtime and where its orders go.

`BacktestVenue` (strategies/backtest) simulates fills on historical candles; an exchange adapter
(later) sends the same decisions through shared/bybit/rest_client.py and reports the bot's fills
from the listener's `fills:{bot_id}` stream. Both are driven the same way: the driver gives each
event to the `Runtime`, persists its state changes, then calls `execute` with its decisions.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from strategies.runtime.context import Account
from strategies.runtime.orders import Decision


class VenueAdapter(Account, Protocol):
    def execute(self, decisions: Sequence[Decision]) -> None:
        """Accept decisions made at their `time_ms`; fills come back as events to the runtime."""
