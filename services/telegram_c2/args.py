"""Command arguments, validated before anything runs (pure). A bad argument becomes one short
reply; user input is echoed back only when it is plainly harmless."""
from __future__ import annotations

import re
from dataclasses import dataclass

from shared.bots import BOTS
from shared.queries.windows import WINDOW_DAYS

MAX_ARGS = 3
MAX_ARG_CHARS = 32
MAX_FILLS = 50
MAX_DAYS = 90
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class BadInput(ValueError):
    """The reply to send the user, as the message."""


def _shown(arg: str) -> str:
    """The argument quoted, with a leading space, or nothing when it is not plainly harmless."""
    return f" '{arg}'" if _SAFE.match(arg) else ""


def check_args(args: list[str], allowed: int) -> list[str]:
    if len(args) > max(allowed, 0) or len(args) > MAX_ARGS:
        raise BadInput("Too many arguments. Send /help for usage.")
    for arg in args:
        if len(arg) > MAX_ARG_CHARS:
            raise BadInput(f"Argument too long (at most {MAX_ARG_CHARS} characters).")
    return args


def parse_bot(arg: str, *, allow_all: bool = False) -> str | None:
    """A bot id (or, when allowed, 'all' meaning every bot, returned as None)."""
    value = arg.strip().lower()
    if allow_all and value == "all":
        return None
    if value in BOTS:
        return value
    # Accept the short name (e.g. "momentum" for momentum_001) when it is unambiguous.
    matches = [b for b in BOTS if b.split("_")[0] == value]
    if len(matches) == 1:
        return matches[0]
    raise BadInput(f"Unknown bot{_shown(arg)}. Known bots: {', '.join(BOTS)}.")


def parse_count(arg: str, *, what: str, maximum: int) -> int:
    if not arg.isdigit() or not arg.isascii():
        if arg.startswith("-") and arg[1:].isdigit():
            raise BadInput(f"The number of {what} must be positive.")
        raise BadInput(f"Not a number of {what}:{_shown(arg) or ' (unreadable argument)'}.")
    n = int(arg)
    if n < 1:
        raise BadInput(f"The number of {what} must be positive.")
    if n > maximum:
        raise BadInput(f"At most {maximum} {what}.")
    return n


def parse_window(arg: str) -> str:
    value = arg.strip().lower()
    if value not in WINDOW_DAYS:
        raise BadInput(f"Unknown period{_shown(arg)}. Use one of: {', '.join(WINDOW_DAYS)}.")
    return value


@dataclass(frozen=True)
class FillsArgs:
    count: int
    bot_id: str | None


def parse_fills_args(args: list[str], default: int = 10) -> FillsArgs:
    """`/fills [n] [bot]` in either order."""
    check_args(args, 2)
    count, bot = default, None
    for arg in args:
        if arg.lstrip("-").isdigit():
            count = parse_count(arg, what="fills", maximum=MAX_FILLS)
        else:
            bot = parse_bot(arg)
    return FillsArgs(count, bot)
