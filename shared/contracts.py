"""Every name one process writes and another reads: Redis channels, streams, keys, consumer groups, and the
shared keys in PostgreSQL (`trading.strategy_state`, `trading.alert_state`). Defined here once and
imported everywhere; docs/contracts.md describes the contents. tests/unit/test_contract_strings.py fails
when one of these names is spelled as a literal anywhere else in shared/, services/, strategies/, infra/.

Key functions take the parts of the name as strings and return the name; `*_prefix` functions return the
part before the last variable (for SCAN MATCH `{prefix}*`). Redis db: 0 (the platform's) unless a line
says "the bot's db".
"""
from __future__ import annotations

# --- pub/sub channels ---------------------------------------------------------------------------------------

FILLS_CHANNEL = "fills_channel"
"""Every committed fill, JSON (at least once). Listener publishes; C2 alerts and AlphaDBClient.follow_fills read."""

CONTROL_CHANNEL = "control_channel"
"""pause / resume / flatten commands. C2 (shared/queries/control.py) publishes; bots (AlphaDBClient) read."""


# --- streams ------------------------------------------------------------------------------------------------


def fill_feed_key(bot_id: str) -> str:
    """`fills:{bot_id}`: the bot's durable fill feed. Listener writes (with the publish); the live bot reads."""
    return f"fills:{bot_id}"


def kline_stream_key(symbol: str, interval: str) -> str:
    """`klines:{symbol}:{interval}` (Bybit's interval names: "5", "60", "D"): closed candles, id `{start_ms}-0`.
    Listener writes; live bots read."""
    return f"klines:{symbol}:{interval}"


def events_stream_key(bot_id: str) -> str:
    """`events:{bot_id}`: the bot's events. The live bot process writes; C2 relays them (EVENTS_GROUP)."""
    return f"events:{bot_id}"


EVENTS_DEAD_LETTERS_STREAM = "events:dead_letters"
"""Bot events C2 could not read. C2 writes; operators read."""

INGEST_STREAM = "ingest:executions"
"""Executions and position snapshots recovered from REST. trade_sync writes; the listener reads (INGEST_GROUP)."""

FLATTEN_REQUESTS_STREAM = "control:flatten_requests"
"""Flatten requests. C2 writes; trade_sync executes them (FLATTEN_GROUP)."""


# --- consumer groups (bare words, also used as role and service names: checked where the group calls are) ---

INGEST_GROUP = "listener"
"""Consumer group on INGEST_STREAM: the listener reads, trade_sync creates it too before its first entry."""

FLATTEN_GROUP = "trade_sync"
"""Consumer group on FLATTEN_REQUESTS_STREAM. C2 creates it with its first request; trade_sync reads."""

FLATTEN_CONSUMER = "trade_sync"
"""trade_sync's one consumer in FLATTEN_GROUP (its pending entries are re-read after a restart)."""

EVENTS_GROUP = "telegram_c2"
"""Consumer group on every `events:{bot_id}`. C2 creates and reads it."""

EVENTS_CONSUMER = "c2"
"""C2's one consumer in EVENTS_GROUP."""


# --- result hashes ------------------------------------------------------------------------------------------


def ingest_result_key(batch_id: str) -> str:
    """`ingest:result:{batch_id}`: counts of one recovered batch. Listener writes after commit; trade_sync reads."""
    return f"ingest:result:{batch_id}"


def flatten_result_key(request_id: str) -> str:
    """`control:flatten_result:{request_id}`: what a flatten did. trade_sync writes; C2 reads."""
    return f"control:flatten_result:{request_id}"


# --- positions and market data ------------------------------------------------------------------------------


def position_key_prefix(bot_id: str) -> str:
    """`position:{bot_id}:`, the start of every position key of a bot (scan `{prefix}*`)."""
    return f"position:{bot_id}:"


def position_key(bot_id: str, symbol: str) -> str:
    """`position:{bot_id}:{symbol}` (the bot's db): the open position, JSON. Listener writes; bots, C2,
    trade_sync read."""
    return f"{position_key_prefix(bot_id)}{symbol}"


def position_seq_key(bot_id: str, symbol: str) -> str:
    """`listener:position_seq:{bot_id}:{symbol}` (the bot's db): last applied position seq. Listener only."""
    return f"listener:position_seq:{bot_id}:{symbol}"


def market_price_key(symbol: str) -> str:
    """`market:{symbol}:price`: JSON `{"price", "updated_at"}`, with a TTL. Listener writes; AlphaDBClient reads."""
    return f"market:{symbol}:price"


def market_volume_key(symbol: str) -> str:
    """`market:{symbol}:volume`: 24 h volume. Listener writes; anyone reads."""
    return f"market:{symbol}:volume"


def market_kline_key(symbol: str, interval: str) -> str:
    """`market:{symbol}:kline:{interval}`: the latest candle, JSON. Listener writes; anyone reads."""
    return f"market:{symbol}:kline:{interval}"


# --- control ------------------------------------------------------------------------------------------------


def control_key(bot_id: str) -> str:
    """`control:{bot_id}`: JSON `{"status": "active"|"paused", ...}`. C2 writes; the bot (AlphaDBClient) reads."""
    return f"control:{bot_id}"


# --- heartbeats, liveness, locks, listener state ------------------------------------------------------------

HEARTBEAT_PREFIX = "heartbeat:"
"""Every service's heartbeat key starts with this; C2's /status lists them (SCAN `heartbeat:*`)."""


def listener_heartbeat_key(name: str) -> str:
    """`heartbeat:websocket_listener:{name}` (name: a bot id or `public`). Listener writes; its health
    command and C2 read."""
    return f"{HEARTBEAT_PREFIX}websocket_listener:{name}"


TRADE_SYNC_HEARTBEAT_KEY = f"{HEARTBEAT_PREFIX}trade_sync:scheduler"
"""trade_sync's scheduler beat (TTL). trade_sync writes; its health command and C2 read."""

C2_HEARTBEAT_KEY = f"{HEARTBEAT_PREFIX}telegram_c2:main"
"""C2's beat (TTL). C2 writes; its health command reads."""


def bot_heartbeat_key(bot_id: str) -> str:
    """`heartbeat:bot:{bot_id}`: ISO UTC time of the bot's last beat (TTL). AlphaDBClient writes; C2 reads."""
    return f"{HEARTBEAT_PREFIX}bot:{bot_id}"


def liveness_key(bot_id: str) -> str:
    """`liveness:bot:{bot_id}`: hash of when the bot last decided. The live bot writes; strategies.health reads."""
    return f"liveness:bot:{bot_id}"


def trade_sync_lock_key(bot_id: str) -> str:
    """`lock:trade_sync:{bot_id}`: a trade_sync run in progress for the bot. trade_sync (any of its processes)."""
    return f"lock:trade_sync:{bot_id}"


LISTENER_COUNTERS_KEY = "listener:counters"
"""Hash of the listener's counters. Listener writes; its health command reads."""

LISTENER_CONNECTIONS_KEY = "listener:connections"
"""Hash of the listener's per-connection state, JSON. Listener writes; its health command and C2 read."""


# --- PostgreSQL keys ----------------------------------------------------------------------------------------

RISK_STATE_KEY = "_risk"
"""`trading.strategy_state` key of a bot's risk guards. The bot's runtime writes; C2 (/sitrep) reads."""

RECONCILER_CURSOR_KEY = "reconciler:last_run_id"
"""`trading.alert_state` key: sync runs already reported, JSON `{"through", "reported"}`. C2 only."""


def listener_alert_key(name: str) -> str:
    """`trading.alert_state` key of a listener connection being down (name: a bot id or `public`). C2 only."""
    return f"listener:{name}"


def bot_heartbeat_alert_key(bot_id: str) -> str:
    """`trading.alert_state` key of a bot's heartbeat being stale. C2 only."""
    return f"bot_heartbeat:{bot_id}"


def drawdown_alert_key(bot_id: str) -> str:
    """`trading.alert_state` key of a bot past its drawdown limit. C2 only."""
    return f"drawdown:{bot_id}"
