"""Typed results of the query layer; transports (Telegram, the terminal) only format these."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from shared.analytics.metrics import DayPnl, Performance, PnlTotals, TripStats


@dataclass(frozen=True)
class Heartbeat:
    name: str  # "{service}:{name}", e.g. "websocket_listener:public"
    age_s: float | None  # None: no beat on record (expired after its TTL)


@dataclass(frozen=True)
class BotStatus:
    bot_id: str
    strategy_name: str
    control: str  # active | paused | stopped | unregistered
    heartbeat_age_s: float | None
    connection_up: bool | None  # the listener's private stream for this bot; None: unknown
    last_fill_at: datetime | None


@dataclass(frozen=True)
class StatusReport:
    at: datetime
    services: tuple[Heartbeat, ...]
    bots: tuple[BotStatus, ...]
    database_ok: bool
    database_ms: float | None
    redis_ok: bool
    redis_ms: float | None


@dataclass(frozen=True)
class PositionRow:
    bot_id: str
    symbol: str
    side: str
    size: Decimal
    entry: Decimal | None
    mark: Decimal | None
    unrealised: Decimal | None
    liq_price: Decimal | None
    updated_at: str | None


@dataclass(frozen=True)
class BalanceRow:
    bot_id: str
    equity: Decimal | None
    available: Decimal | None
    wallet_balance: Decimal | None
    unrealised: Decimal | None
    at: datetime | None


@dataclass(frozen=True)
class ReportFillRow:
    bot_id: str
    symbol: str
    side: str
    exec_type: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    exec_time: datetime
    close_reason: str | None


@dataclass(frozen=True)
class GroupPnl:
    key: str  # a bot id or a symbol
    label: str  # the strategy's name for a bot, the symbol again for a symbol
    totals: PnlTotals
    trips: TripStats


@dataclass(frozen=True)
class AnalyticsReport:
    window: str
    since: date | None
    totals: PnlTotals
    trips: TripStats
    by_bot: tuple[GroupPnl, ...]
    top_symbols: tuple[GroupPnl, ...]
    unrealised: Decimal
    bot_id: str | None = None


@dataclass(frozen=True)
class PerformanceReport:
    bot_id: str | None
    performance: Performance
    unrealised: Decimal


@dataclass(frozen=True)
class DailyReport:
    bot_id: str | None
    days: tuple[DayPnl, ...]


@dataclass(frozen=True)
class ControlResult:
    command: str
    bots: tuple[str, ...]
    status: str | None  # the control status now in force, for pause/resume
    detail: str | None = None  # for flatten: what was closed on the exchange


@dataclass(frozen=True)
class TradeRow:
    """A completed round trip (a row of the view `trading.completed_trades`)."""
    trade_id: int
    bot_id: str
    symbol: str
    entry_side: str  # Buy (long) | Sell (short)
    entry_price: Decimal | None
    entry_qty: Decimal | None
    entry_time: datetime
    entry_reason: str | None
    exit_price: Decimal | None
    exit_qty: Decimal | None
    exit_time: datetime
    exit_reason: str | None
    gross_pnl: Decimal
    net_pnl: Decimal
    pnl_pct: Decimal | None
    total_commission: Decimal
    holding_s: Decimal


@dataclass(frozen=True)
class QuickReport:
    at: datetime
    balances: tuple[BalanceRow, ...]
    total_equity: Decimal
    trips_won: int
    trips_lost: int
    net_today: Decimal
    unrealised: Decimal
    positions: tuple[PositionRow, ...]


@dataclass(frozen=True)
class SyncRow:
    bot_id: str
    status: str
    finished_at: datetime | None
    missing_found: int


@dataclass(frozen=True)
class PoolRow:
    database: str
    user: str
    active: int
    waiting: int


@dataclass(frozen=True)
class GuardState:
    """A bot's risk guards as its runtime last saved them (strategy_state `_risk`)."""

    bot_id: str
    tripped: tuple[str, ...]  # guards in force now (no end, or an end still ahead)
    kill_switch: bool

    @property
    def ok(self) -> bool:
        return not self.tripped and not self.kill_switch


@dataclass(frozen=True)
class Sitrep:
    status: StatusReport
    pools: tuple[PoolRow, ...] | None  # None: PgBouncer's console could not be read
    last_sync: tuple[SyncRow, ...]
    positions: int
    unrealised: Decimal
    net_today: Decimal | None  # None: could not be read
    verdict: str  # nominal | degraded | critical
    reasons: tuple[str, ...]
    guards: tuple[GuardState, ...] = ()  # bots whose runtime keeps guard state
