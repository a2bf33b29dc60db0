"""Fixtures for trade_sync against real processes: a seeded venue, PostgreSQL via PgBouncer, Redis, the listener."""
from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.bybit_sim.handle import VenueProcess
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack

MONTHS = 3
EXECUTIONS = 1200


@pytest.fixture(scope="session")
def seeded_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three accounts with three months of trading (funding included); copied for each venue. Seeded once per
    run: the xdist workers of one run share it (the seeder takes seconds of CPU on cores the tests share)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        path = tmp_path_factory.mktemp("ts_seed") / "state.json"
        h.seed_state(path, MONTHS, EXECUTIONS)
        return path
    shared = tmp_path_factory.getbasetemp().parent / f"ts_seed-{run_id}"  # the run's workers' common folder
    shared.mkdir(exist_ok=True)
    path = shared / "state.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = shared / "state.partial.json"
            partial.unlink(missing_ok=True)
            h.seed_state(partial, MONTHS, EXECUTIONS)
            partial.rename(path)
    return path


def _venue(seeded_state: Path, tmp_path_factory: pytest.TempPathFactory, **kw: int) -> VenueProcess:
    state = tmp_path_factory.mktemp("ts_venue") / "state.json"
    shutil.copy(seeded_state, state)
    return h.start_venue(state, **kw)


@pytest.fixture(scope="module")
def venue(seeded_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    v = _venue(seeded_state, tmp_path_factory)
    yield v
    v.close()


@pytest.fixture(scope="module")
def slow_venue(seeded_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    """Five history requests per second per account: a backfill lasts long enough to be killed midway."""
    v = _venue(seeded_state, tmp_path_factory, query_limit=5)
    yield v
    v.close()


def start_listener_for(stack: TestStack, venue: VenueProcess, tmp_path: Path) -> h.Listener:
    env = h.base_env(stack.env, venue)
    return h.start_listener(env, tmp_path / "listener.log", stack.redis.redis_port,
                            stack.redis.redis_password.get_secret_value())  # type: ignore[union-attr]


@pytest.fixture
async def listener(clean_state: TestStack, venue: VenueProcess, tmp_path: Path) -> AsyncIterator[h.Listener]:
    lst = start_listener_for(clean_state, venue, tmp_path)
    yield lst
    lst.stop()


@pytest.fixture
def env(clean_state: TestStack, venue: VenueProcess) -> dict[str, str]:
    return h.base_env(clean_state.env, venue)
