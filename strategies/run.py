"""Run one bot live: `python -m strategies.run BOT [--set key=value ...]`.

BOT is a name from strategies/registry.py; `--set` takes its config keys (`bot_id` chooses the
account: one of shared/bots.py, whose `{PREFIX}_BYBIT_API_KEY/SECRET` are used). Where it trades comes
from `BYBIT_VENUE` and friends (shared/settings.py; live is never a default); the process settings
are `STRATEGY_*` (strategies/runtime/live/config.py). Bad arguments or configuration: one line on
stderr, exit 2. SIGTERM / SIGINT stop it cleanly.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError

from shared.alpha_db_client import AlphaDBClient
from shared.bots import BOTS, PLATFORM_REDIS_DB
from shared.bybit.rest_client import BybitRestClient
from shared.log import configure_logging
from shared.redis_client import redis_for
from shared.settings import (
    BotKeysSettings, ConfigError, DatabaseSettings, RedisSettings, VenueSettings, build_settings, fail_config,
)
from strategies.registry import UnknownBot, lookup
from strategies.runtime.candles import INTERVAL_MS
from strategies.runtime.live.bot import LiveBot
from strategies.runtime.live.config import LiveSettings
from strategies.runtime.live.exchange import Exchange
from strategies.runtime.live.liveness import LivenessWriter
from strategies.runtime.state_pg import PgStateStore
from strategies.runtime.strategy import Strategy, StrategyConfig

log = structlog.get_logger()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"strategies.run: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="python -m strategies.run", description="Run one bot live against the configured venue.")
    p.add_argument("bot", help="a bot of strategies/registry.py")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a strategy config value")
    return p.parse_args(argv)


def build_strategy(bot: str, settings: list[str]) -> Strategy[Any]:
    try:
        cls, cfg_cls = lookup(bot)
    except UnknownBot as exc:
        raise ConfigError(str(exc.args[0])) from None
    values: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        if key not in cfg_cls.model_fields:
            raise ConfigError(f"unknown setting {key!r} for {bot}; known: {', '.join(sorted(cfg_cls.model_fields))}")
        annotation = cfg_cls.model_fields[key].annotation
        values[key] = tuple(x for x in raw.split(",") if x) if getattr(annotation, "__origin__", None) is tuple else raw
    try:
        config: StrategyConfig = cfg_cls.model_validate(values)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(f"{bot}: {'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}") from None
    if config.bot_id not in BOTS:
        raise ConfigError(f"bot_id {config.bot_id!r} has no account; known: {', '.join(sorted(BOTS))} "
                          "(use --set bot_id=...)")
    return cls(config)


async def run(strategy: Strategy[Any], live: LiveSettings, venue: VenueSettings, keys: BotKeysSettings) -> int:
    bot_id = strategy.config.bot_id
    api_key, secret = keys.credentials(bot_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rest = BybitRestClient(venue.rest_url, api_key, secret, venue.bybit_recv_window_ms, timeout_s=live.rest_timeout_s)
    exchange = Exchange(bot_id, rest)
    redis = redis_for(build_settings(RedisSettings), PLATFORM_REDIS_DB)
    log.info("bot_starting", bot_id=bot_id, venue=venue.venue, rest_url=venue.rest_url, strategy=type(strategy).__name__)
    try:
        async with AlphaDBClient(bot_id, db=build_settings(DatabaseSettings), bot_name=type(strategy).__name__,
                                 heartbeat_interval_s=live.heartbeat_interval_s) as client:
            bot = LiveBot(strategy, settings=live, exchange=exchange, redis=redis,
                          store=PgStateStore.for_client(client), controls=client.controls,
                          initial_control=await client.control_status())
            interval_ms = min((INTERVAL_MS[sub.key[1]] for sub in bot.subs), default=60_000)
            liveness = LivenessWriter(redis, bot_id, interval_ms, every_s=live.liveness_interval_s)
            follower = asyncio.create_task(liveness.follow(bot.started, lambda: bot.handled_bars), name="liveness")
            try:
                await bot.run(stop)
            finally:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
    finally:
        await exchange.close()
        await redis.aclose()
    log.info("bot_stopped", bot_id=bot_id)
    return 0


def launch(make_strategy: Callable[[], Strategy[Any]], service: str = "strategy") -> int:
    """A bot process: the strategy (built by `make_strategy`, which raises ConfigError on bad
    configuration), its account's keys and the process settings; then the live loop until SIGTERM.
    Bad configuration: one line on stderr, exit 2. Shared by `strategies.run` and the bots' own
    entry points (`python -m strategies.shortseller`)."""
    try:
        strategy = make_strategy()
        live = build_settings(LiveSettings)
        venue = build_settings(VenueSettings)
        keys = build_settings(BotKeysSettings)
        keys.credentials(strategy.config.bot_id)
    except ConfigError as exc:
        fail_config(exc)
    configure_logging(service, bot_id=strategy.config.bot_id)
    return asyncio.run(run(strategy, live, venue, keys))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return launch(lambda: build_strategy(args.bot, args.set))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
