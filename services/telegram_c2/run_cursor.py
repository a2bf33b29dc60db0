"""Which finished reconciler runs are still to be reported (pure).

`trading.sync_runs` ids are given out when a run starts, and runs of different bots finish in any
order, so "the highest id seen" would skip a run still going when a later one finishes. The cursor
is a watermark (every run up to it is finished and was handled) plus the ids above it already
reported. The watermark stops at the first run still going, and at a gap in the ids (an insert not
yet committed) until the run after the gap is GAP_GRACE_S old: a rolled-back insert leaves a gap
for ever, an uncommitted one not for long.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

GAP_GRACE_S = 600.0


@dataclass(frozen=True)
class Run:
    id: int
    bot_id: str
    status: str
    missing_found: int
    recovered: int
    started_at: datetime


@dataclass(frozen=True)
class RunCursor:
    through: int
    reported: frozenset[int] = frozenset()

    def dump(self) -> str:
        return json.dumps({"through": self.through, "reported": sorted(self.reported)})

    @staticmethod
    def load(text: str | None) -> RunCursor | None:
        """None when there is no cursor yet; the old form (a bare id) is read as a watermark."""
        if not text:
            return None
        if text.isdigit():
            return RunCursor(int(text))
        d = json.loads(text)
        return RunCursor(int(d["through"]), frozenset(int(i) for i in d.get("reported", ())))


def step(cursor: RunCursor, runs: list[Run], now: datetime) -> tuple[list[Run], RunCursor]:
    """(the runs to report now, the next cursor), given the runs above the watermark in id order."""
    to_report = [r for r in runs
                 if r.status != "running" and r.missing_found > 0 and r.id not in cursor.reported]
    through = cursor.through
    for r in runs:
        gap = r.id != through + 1
        if r.status == "running" or (gap and (now - r.started_at).total_seconds() < GAP_GRACE_S):
            break
        through = r.id
    reported = frozenset(i for i in cursor.reported | {r.id for r in to_report} if i > through)
    return to_report, RunCursor(through, reported)
