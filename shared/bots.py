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
    alias: str = ""  # the operators' short name (alpha, bravo, charlie), accepted wherever a bot is named


BOTS: dict[str, BotSpec] = {
    spec.bot_id: spec
    for spec in (
        BotSpec("shortseller_001", 0, "SHORTSELLER", "ShortSeller", "alpha"),
        BotSpec("lxalgo_001", 1, "LXALGO", "LXAlgo", "bravo"),
        BotSpec("momentum_001", 2, "MOMENTUM", "Momentum", "charlie"),
    )
}


def bot_spec(bot_id: str) -> BotSpec:
    try:
        return BOTS[bot_id]
    except KeyError:
        raise ValueError(f"unknown bot {bot_id!r}; known bots: {', '.join(sorted(BOTS))}") from None


def resolve_bot(name: str) -> str | None:
    """The bot id a name means: the id itself, its alias (alpha, bravo, charlie), or the id's first
    part when unambiguous ("momentum"); case-insensitive. None when it names no bot. The one place
    a bot's name is read, for every transport."""
    value = name.strip().lower()
    if value in BOTS:
        return value
    by_name = [b for b, s in BOTS.items() if s.alias == value] or [b for b in BOTS if b.split("_")[0] == value]
    return by_name[0] if len(by_name) == 1 else None
