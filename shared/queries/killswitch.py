"""The kill switch: pause every bot, then cancel every open order and close every position of every
bot (reduce-only market orders under each bot's own key, as /flatten does), then say what is left.
It stops nothing else (the listener, trade_sync and C2 keep running, so the closing fills are
recorded and reported).

C2 closes a bot's positions itself when it holds the bot's key (locally, and in tests); where it
does not (the production container gets no trading key), it asks the bot on `control_channel` to
close with its own key, and the report says so: what the bot did is then not verified here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.bots import BOTS
from shared.queries.flatten import Flattener, FlattenOutcome, Leftovers

if TYPE_CHECKING:
    from shared.queries.control import Control


@dataclass(frozen=True)
class KillOutcome:
    bot_id: str
    flattened: FlattenOutcome | None  # None: C2 holds no key for this bot
    left: Leftovers | None
    asked: int = 0  # without a key: how many bot processes heard the request to close

    @property
    def clean(self) -> bool:
        return (self.flattened is not None and not self.flattened.errors and self.left is not None
                and self.left.error is None and not self.left.positions and self.left.open_orders == 0)


@dataclass(frozen=True)
class KillReport:
    paused: tuple[str, ...]
    bots: tuple[KillOutcome, ...]
    pause_error: str | None = None  # the pause could not be recorded (the closing went ahead anyway)

    @property
    def clean(self) -> bool:
        return self.pause_error is None and all(b.clean for b in self.bots)


async def kill_switch(control: Control, flattener: Flattener, by: str) -> KillReport:
    """A failed pause (database or Redis down) does not stop the closing: the exchange is what matters."""
    paused: tuple[str, ...] = ()
    pause_error = None
    try:
        paused = (await control.set_status(tuple(BOTS), "paused", by)).bots
    except Exception as exc:  # noqa: BLE001 - reported, and the positions are still closed
        pause_error = f"{type(exc).__name__}: {str(exc)[:150]}"
    outcomes = []
    for bot_id in BOTS:
        if not flattener.can_flatten(bot_id):
            try:
                asked = await control.request_flatten(bot_id, by)
            except Exception:  # noqa: BLE001 - Redis down: reported as nobody asked
                asked = 0
            outcomes.append(KillOutcome(bot_id, None, None, asked))
            continue
        flattened = await flattener.flatten(bot_id)
        outcomes.append(KillOutcome(bot_id, flattened, await flattener.leftovers(bot_id)))
    return KillReport(paused, tuple(outcomes), pause_error)
