"""Command arguments, validated before anything runs (pure). A bad argument becomes one short
reply; user input is echoed back only when it is plainly harmless."""
from __future__ import annotations

import re
from dataclasses import dataclass

from shared.bots import BOTS, resolve_bot
from shared.queries.windows import MAX_WINDOW_DAYS, WINDOW_DAYS

MAX_ARGS = 3
MAX_ARG_CHARS = 32
MAX_FILLS = 50
MAX_DAYS = 90
MAX_TRADES = 50
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class BadArgs(ValueError):
    """The reply to send the user, as the message."""


def _shown(arg: str) -> str:
    """The argument quoted, with a leading space, or nothing when it is not plainly harmless."""
    return f" '{arg}'" if _SAFE.match(arg) else ""


def check_args(args: list[str], allowed: int) -> list[str]:
    if len(args) > max(allowed, 0) or len(args) > MAX_ARGS:
        raise BadArgs("Too many arguments. Send /help for usage.")
    for arg in args:
        if len(arg) > MAX_ARG_CHARS:
            raise BadArgs(f"Argument too long (at most {MAX_ARG_CHARS} characters).")
    return args


def parse_bot(arg: str, *, allow_all: bool = False) -> str | None:
    """A bot by id, alias or short name (or, when allowed, 'all' meaning every bot, returned as None)."""
    if allow_all and arg.strip().lower() == "all":
        return None
    bot_id = resolve_bot(arg)
    if bot_id is None:
        known = ", ".join(f"{b} ({s.alias})" for b, s in BOTS.items())
        raise BadArgs(f"Unknown bot{_shown(arg)}. Known bots: {known}.")
    return bot_id


def parse_count(arg: str, *, what: str, maximum: int) -> int:
    if not arg.isdigit() or not arg.isascii():
        if arg.startswith("-") and arg[1:].isdigit():
            raise BadArgs(f"The number of {what} must be positive.")
        raise BadArgs(f"Not a number of {what}:{_shown(arg) or ' (unreadable argument)'}.")
    n = int(arg)
    if n < 1:
        raise BadArgs(f"The number of {what} must be positive.")
    if n > maximum:
        raise BadArgs(f"At most {maximum} {what}.")
    return n


def parse_window(arg: str) -> str:
    """`today`, `7d`, `30d`, `all`, or a number of days (`14` or `14d`), as a window name."""
    value = arg.strip().lower()
    if value in WINDOW_DAYS:
        return value
    digits = value[:-1] if value.endswith("d") else value
    if digits.isdigit() and digits.isascii():
        n = parse_count(digits, what="days", maximum=MAX_WINDOW_DAYS)
        return f"{n}d"
    if digits.startswith("-") and digits[1:].isdigit():
        raise BadArgs("The number of days must be positive.")
    raise BadArgs(f"Unknown period{_shown(arg)}. Use one of: {', '.join(WINDOW_DAYS)}, or a number of days.")


def _is_window(arg: str) -> bool:
    value = arg.strip().lower()
    digits = value[:-1] if value.endswith("d") else value
    return value in WINDOW_DAYS or digits.lstrip("-").isdigit()


@dataclass(frozen=True)
class ScopeArgs:
    bot_id: str | None
    value: str | int | None  # the window or the count, None when not given


def parse_bot_and(args: list[str], parse_value, what: str, hint: str):  # type: ignore[no-untyped-def]
    """`[bot] [value]` in either order: one bot (or `all`) and one value at most."""
    check_args(args, 2)
    bot: str | None = None
    value = None
    seen_bot = seen_value = False
    for arg in args:
        if _is_window(arg):
            if seen_value:
                raise BadArgs(f"Give one {what} at most. Send /help for usage.")
            value, seen_value = parse_value(arg), True
        else:
            if seen_bot:
                raise BadArgs("Give one bot at most. Send /help for usage.")
            if arg.strip().lower() != "all" and resolve_bot(arg) is None:
                aliases = ", ".join(s.alias for s in BOTS.values())
                raise BadArgs(f"Unknown bot or {what}{_shown(arg)}. Bots: {aliases} (or their ids, or all); {hint}.")
            bot, seen_bot = parse_bot(arg, allow_all=True), True
    return ScopeArgs(bot, value)


def parse_analytics_args(args: list[str]) -> ScopeArgs:
    """`/analytics [bot] [today|7d|30d|all|N]`."""
    a = parse_bot_and(args, parse_window, "period", f"periods: {', '.join(WINDOW_DAYS)} or a number of days")
    return ScopeArgs(a.bot_id, a.value or "today")


def parse_daily_args(args: list[str], default: int = 7) -> ScopeArgs:
    """`/daily [bot] [n]`."""
    a = parse_bot_and(args, lambda arg: parse_count(arg, what="days", maximum=MAX_DAYS), "number of days",
                      f"days: 1 to {MAX_DAYS}")
    return ScopeArgs(a.bot_id, a.value or default)


def parse_trades_args(args: list[str], default: int = 10) -> ScopeArgs:
    """`/trades [bot] [n]`."""
    a = parse_bot_and(args, lambda arg: parse_count(arg, what="trades", maximum=MAX_TRADES), "number of trades",
                      f"trades: 1 to {MAX_TRADES}")
    return ScopeArgs(a.bot_id, a.value or default)


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
