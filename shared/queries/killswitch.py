"""The kill switch: pause every bot, then cancel every open order and close every position of every
bot (reduce-only market orders under each bot's own key, as /flatten does), then say what is left.
It stops nothing else (the listener, trade_sync and C2 keep running, so the closing fills are
recorded and reported).

The closing is done by trade_sync, which holds every bot's key (C2's container holds none): C2
writes one durable request per bot (flatten_requests.py) and waits for the results, which say what
each bot still holds on the exchange afterwards. Each bot is also told on `control_channel`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.bots import BOTS
from shared.queries.flatten_requests import FlattenResult

if TYPE_CHECKING:
    from shared.queries.control import BotController


@dataclass(frozen=True)
class KillOutcome:
    bot_id: str
    result: FlattenResult | None  # None: trade_sync did not answer in time (or the request failed)
    request_error: str | None = None  # the request could not be written

    @property
    def clean(self) -> bool:
        return self.result is not None and self.result.clean


@dataclass(frozen=True)
class KillReport:
    paused: tuple[str, ...]
    bots: tuple[KillOutcome, ...]
    pause_error: str | None = None  # the pause could not be recorded (the closing went ahead anyway)
    waited_s: float = 0.0

    @property
    def clean(self) -> bool:
        return self.pause_error is None and all(b.clean for b in self.bots)


async def kill_switch(control: BotController, by: str) -> KillReport:
    """A failed pause (database or Redis down) does not stop the closing: the exchange is what matters."""
    paused: tuple[str, ...] = ()
    pause_error = None
    try:
        paused = (await control.set_status(tuple(BOTS), "paused", by)).bots
    except Exception as exc:  # noqa: BLE001 - reported, and the positions are still closed
        pause_error = f"{type(exc).__name__}: {str(exc)[:150]}"
    for bot_id in BOTS:
        try:
            await control.request_flatten(bot_id, by)
        except Exception:  # noqa: BLE001 - only a courtesy to the bots; trade_sync does the closing
            pass
    try:
        results = await control.execute_flatten(tuple(BOTS), by)
    except Exception as exc:  # noqa: BLE001 - Redis down: nothing could be asked
        error = f"{type(exc).__name__}: {str(exc)[:150]}"
        return KillReport(paused, tuple(KillOutcome(b, None, error) for b in BOTS), pause_error,
                          control.flatten_wait_s)
    return KillReport(paused, tuple(KillOutcome(b, results[b]) for b in BOTS), pause_error, control.flatten_wait_s)
