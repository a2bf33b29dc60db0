"""Health check of a live bot: `python -m strategies.health BOT_ID [--slack-s S] [--limit-s S]`.

Exit 0 when the bot handed its strategy a candle recently enough; 1 (one line on stderr) when it
stopped deciding, never started, or its process left no record; 2 for bad arguments or settings.
The limit is 2 x the bot's shortest candle interval + `--slack-s` (default 60), or `--limit-s`.
It reads `liveness:bot:{bot_id}` from the platform Redis (strategies/runtime/live/liveness.py), with
the same `REDIS_*` settings as the bot: the container's health check.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from redis.exceptions import RedisError

from shared.bots import BOTS, PLATFORM_REDIS_DB
from shared.redis_client import redis_for
from shared.settings import ConfigError, RedisSettings, build_settings, fail_config
from strategies.runtime.live.liveness import DEFAULT_SLACK_S, Liveness, limit_ms, liveness_key, now_ms, verdict


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"strategies.health: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="python -m strategies.health", description="Fail when a live bot stopped deciding.")
    p.add_argument("bot_id", help="e.g. shortseller_001")
    p.add_argument("--slack-s", type=float, default=DEFAULT_SLACK_S, help="added to 2 x the candle interval")
    p.add_argument("--limit-s", type=float, default=None, help="the limit itself (overrides the above)")
    args = p.parse_args(argv)
    if args.bot_id not in BOTS:
        p.error(f"unknown bot_id {args.bot_id!r}; known: {', '.join(sorted(BOTS))}")
    if args.slack_s < 0 or (args.limit_s is not None and args.limit_s <= 0):
        p.error("--slack-s must be >= 0 and --limit-s > 0")
    return args


async def check(bot_id: str, slack_s: float, limit_s: float | None) -> str | None:
    redis = redis_for(build_settings(RedisSettings), PLATFORM_REDIS_DB)
    try:
        raw = await redis.hgetall(liveness_key(bot_id))
    finally:
        await redis.aclose()
    if not raw:
        return f"no liveness record {liveness_key(bot_id)} (the bot has not run)"
    fields = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
              for k, v in raw.items()}
    try:
        rec = Liveness.parse(fields)
    except ValueError as exc:
        return f"bad liveness record {liveness_key(bot_id)}: {exc}"
    limit = int(limit_s * 1000) if limit_s is not None else limit_ms(rec.interval_ms, slack_s)
    return verdict(rec, now_ms(), limit)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        problem = asyncio.run(check(args.bot_id, args.slack_s, args.limit_s))
    except ConfigError as exc:
        fail_config(exc)
    except (RedisError, OSError) as exc:
        problem = f"redis unreachable: {type(exc).__name__}"
    if problem is not None:
        print(f"{args.bot_id} unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
