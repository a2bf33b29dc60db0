"""The live bot's view of its account (the runtime's `Account`): positions, open orders and the wallet
as the exchange last reported them. `refresh` reads them over REST; the bot calls it at
reconciliation, before each candle it handles and after each own fill, so a decision always sees
what the exchange holds at that instant (the stepped venue holds its clock while the bot decides).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from strategies.runtime.live.exchange import Exchange
from strategies.runtime.live.parsing import order_from_rest, position_from_rest
from strategies.runtime.model import ZERO, Position
from strategies.runtime.orders import PlaceOrder


class LiveAccount:
    def __init__(self, bot_id: str, exchange: Exchange, symbols: Iterable[str]) -> None:
        self.bot_id = bot_id
        self.exchange = exchange
        self.symbols = set(symbols)
        self.positions: dict[str, Position] = {}
        self.orders: list[PlaceOrder] = []
        self.prices: dict[str, Decimal] = {}
        self._equity = ZERO
        self._balance = ZERO
        self.adopted_opened_ms: dict[str, int] = {}  # symbol -> createdTime of a position adopted at start

    async def refresh(self, *, orders: bool = True) -> None:
        tasks: list[Any] = [self.exchange.positions(), self.exchange.wallet()]
        if orders:
            tasks.append(self.exchange.open_orders())
        results = await asyncio.gather(*tasks)
        self.apply_positions(results[0])
        self.apply_wallet(results[1])
        if orders:
            self.orders = [order_from_rest(r, self.bot_id) for r in results[2]]

    def apply_positions(self, rows: list[dict[str, Any]]) -> None:
        seen: dict[str, Position] = {}
        for row in rows:
            pos = position_from_rest(row)
            if pos.symbol in self.symbols:
                seen[pos.symbol] = pos
                mark = row.get("markPrice")
                if mark not in (None, ""):
                    self.prices[pos.symbol] = Decimal(str(mark))
        self.positions = seen

    def saw_close(self, symbol: str, close: float) -> None:
        """The close of the candle about to be decided on is the last price its decisions see, as in the
        backtester (a flat symbol has no mark price from the position list, so it had none at all)."""
        self.prices[symbol] = Decimal(repr(close))

    def apply_wallet(self, wallet: dict[str, Any]) -> None:
        for coin in wallet.get("coin") or []:
            if coin.get("coin") == "USDT":
                self._balance = Decimal(str(coin.get("walletBalance") or 0))
                self._equity = Decimal(str(coin.get("equity") or coin.get("walletBalance") or 0))
                return
        eq = wallet.get("totalEquity")
        if eq not in (None, ""):
            self._equity = self._balance = Decimal(str(eq))

    # --- Account protocol ----------------------------------------------------------------------
    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol) or Position(symbol)

    def equity(self) -> Decimal:
        return self._equity

    def balance(self) -> Decimal:
        return self._balance

    def open_orders(self, symbol: str | None = None) -> list[PlaceOrder]:
        return [o for o in self.orders if symbol is None or o.symbol == symbol]

    def last_price(self, symbol: str) -> Decimal:
        return self.prices.get(symbol, ZERO)
