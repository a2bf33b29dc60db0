"""Heartbeats written by the listener, and the health command that reads them (compose health check).

    python -m services.websocket_listener.health    # exit 0 only if every connection is up and recent
"""
from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.contracts import LISTENER_CONNECTIONS_KEY, LISTENER_COUNTERS_KEY, listener_heartbeat_key
from shared.redis_client import redis_for
from shared.settings import BotKeysSettings, ConfigError, RedisSettings, build_settings, fail_config
from services.websocket_listener.config import ListenerSettings
from services.websocket_listener.counters import Counters

HEARTBEAT_TTL_S = 120
PUBLIC = "public"


def select_bots(cfg: ListenerSettings, keys: BotKeysSettings) -> list[str]:
    """The bots this listener serves: LISTENER_BOTS if set (each must have keys), else every bot with keys."""
    if cfg.bots:
        for bot_id in cfg.bots:
            keys.credentials(bot_id)  # raises ConfigError naming the missing variable
        return list(cfg.bots)
    bots = keys.configured_bots()
    if not bots:
        raise ConfigError("no bot has API keys (set e.g. SHORTSELLER_BYBIT_API_KEY and SHORTSELLER_BYBIT_API_SECRET)")
    return bots


def connection_names(bots: Iterable[str]) -> list[str]:
    return [*bots, PUBLIC]


async def write_beats(redis: Redis, states: dict[str, dict[str, object]], healthy: dict[str, bool],
                      counters: Counters, now: datetime) -> None:
    """Beat for each healthy connection; state of all of them and the counters, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for name, ok in healthy.items():
            if ok:
                pipe.set(listener_heartbeat_key(name), now.isoformat().replace("+00:00", "Z"), ex=HEARTBEAT_TTL_S)
        pipe.hset(LISTENER_CONNECTIONS_KEY,
                  mapping={n: json.dumps(s, default=str) for n, s in states.items()})  # type: ignore[arg-type]
        pipe.hset(LISTENER_COUNTERS_KEY, mapping=counters.as_dict())  # type: ignore[arg-type]
        await pipe.execute()


def _parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


async def check(redis: Redis, names: list[str], max_age_s: float, now: datetime) -> list[str]:
    """Problems found; empty means healthy."""
    problems = []
    beats = await redis.mget([listener_heartbeat_key(n) for n in names])
    states = await redis.hgetall(LISTENER_CONNECTIONS_KEY)
    for name, beat in zip(names, beats):
        state = json.loads(states[name]) if name in states else {}
        if not state.get("up"):
            problems.append(f"{name}: down ({state.get('error') or 'no state reported'})")
            continue
        at = _parse_iso(beat) if beat else None
        if at is None:
            problems.append(f"{name}: no heartbeat")
        elif (now - at).total_seconds() > max_age_s:
            problems.append(f"{name}: last heartbeat {(now - at).total_seconds():.0f}s ago")
    return problems


async def _main() -> int:
    try:
        cfg = build_settings(ListenerSettings)
        bots = select_bots(cfg, build_settings(BotKeysSettings))
        redis = redis_for(build_settings(RedisSettings), 0, retries=1)
    except ConfigError as exc:
        fail_config(exc)
    names = connection_names(bots)
    try:
        problems = await check(redis, names, cfg.health_max_age_s, datetime.now(UTC))
        counters = await redis.hgetall(LISTENER_COUNTERS_KEY)
    except (RedisError, OSError) as exc:
        print(f"unhealthy: Redis unreachable ({type(exc).__name__})")
        return 1
    finally:
        await redis.aclose()
    if problems:
        print("unhealthy: " + "; ".join(problems))
        return 1
    summary = ", ".join(f"{k}={counters[k]}" for k in ("fills_written", "duplicates", "dead_lettered", "reconnects")
                        if k in counters)
    print(f"healthy: {', '.join(names)} up; {summary}")
    return 0


def main() -> int:
    return asyncio.run(_main())


if __name__ == "__main__":
    sys.exit(main())
