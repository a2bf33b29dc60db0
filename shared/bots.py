"""The bot registry: ids, Redis databases and the environment prefix of each bot's keys."""
from __future__ import annotations

from dataclasses import dataclass

PLATFORM_REDIS_DB = 0


@dataclass(frozen=True)
class BotSpec:
    bot_id: str
    redis_db: int
    env_prefix: str
    strategy_name: str


BOTS: dict[str, BotSpec] = {
    spec.bot_id: spec
    for spec in (
        BotSpec("shortseller_001", 0, "SHORTSELLER", "ShortSeller"),
        BotSpec("lxalgo_001", 1, "LXALGO", "LXAlgo"),
        BotSpec("momentum_001", 2, "MOMENTUM", "Momentum"),
    )
}


def bot_spec(bot_id: str) -> BotSpec:
    try:
        return BOTS[bot_id]
    except KeyError:
        raise ValueError(f"unknown bot {bot_id!r}; known bots: {', '.join(sorted(BOTS))}") from None
