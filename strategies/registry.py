"""BOT name -> (strategy class, config class), for the backtest CLI and the bot processes.

Entries are import paths so that listing the bots imports none of them.
"""
from __future__ import annotations

import importlib
from typing import Any

from strategies.runtime.strategy import Strategy, StrategyConfig

BOTS: dict[str, str] = {
    "ema_cross": "strategies.examples.ema_cross:EmaCross",
    "alternate": "strategies.examples.alternate:Alternate",
    "shortseller": "strategies.shortseller.strategy:ShortSeller",
}


class UnknownBot(KeyError):
    pass


def lookup(name: str) -> tuple[type[Strategy[Any]], type[StrategyConfig]]:
    path = BOTS.get(name)
    if path is None:
        raise UnknownBot(f"unknown bot {name!r}; known: {', '.join(sorted(BOTS))}")
    module, attr = path.split(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls, cls.config_class
