"""The short chaos run (issue 12): the whole platform, 5,001 fills from the three bots' accounts over 100 s,
13 faults drawn from a fixed seed (every kind once), then every check of bench/chaos_run.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos.run import ChaosParams, figures, run_chaos
from tests.support.chaos.schedule import KINDS
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

SHORT = ChaosParams(seed=20261206, fills=5_000, minutes=100 / 60, faults=len(KINDS))


@pytest.mark.timeout(420)
async def test_short_chaos_run_loses_duplicates_and_misannounces_nothing(stack: TestStack, tmp_path: Path) -> None:
    report = await run_chaos(ChaosParams(**{**SHORT.__dict__, "work_dir": tmp_path}), stack=stack)
    print("\n" + figures(report))
    assert report.failures() == [], figures(report)
    assert report.ledger.venue >= 5_000 and report.ledger.stored == report.ledger.venue
    assert len(report.injected) >= 10 and {r.planned.kind for r in report.injected} == set(KINDS)
    # A kill while the process is still restarting, or a lost answer with no batch to lose, does nothing.
    assert sum(r.effective for r in report.injected) >= 10, [r for r in report.injected if not r.effective]
    assert report.feed.announced == report.ledger.venue and report.feed_xrange.announced == report.ledger.venue
    assert report.pnl_trips > 0 and report.listener_exit_code == 0
