"""Failures the operator must read as one line; the CLI turns each into a message and an exit code."""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the run started but did not finish cleanly (exchange, listener, database)
EXIT_USAGE = 2  # bad input or configuration: nothing was done
EXIT_LOCKED = 3  # another run holds a bot's lock: nothing was done


class TradeSyncError(Exception):
    """A failure with an operator-facing one-line message (never carries a secret)."""

    exit_code = EXIT_FAILED


class UsageError(TradeSyncError):
    exit_code = EXIT_USAGE


class LockHeld(TradeSyncError):
    exit_code = EXIT_LOCKED


class ExchangeError(TradeSyncError):
    """The exchange refused or kept failing; `bot_id` names the account."""

    def __init__(self, bot_id: str, message: str) -> None:
        super().__init__(f"{bot_id}: {message}")
        self.bot_id = bot_id


class IngestTimeout(TradeSyncError):
    """The listener did not confirm a batch in time (is the websocket listener running?)."""
