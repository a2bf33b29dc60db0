"""Fixtures: the simulated venue as a real subprocess on a free loopback port.

The main venues are shared by every module (one process start each); tests use their own API keys or
clean up (orders, faults) so they do not depend on each other.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pybit.unified_trading import HTTP

from services.bybit_sim.handle import REPO_ROOT, VenueAdmin, VenueProcess

KEY, SECRET = "conf-key", "conf-secret"
POOR_KEY, POOR_SECRET = "poor-key", "poor-secret"
HIST_KEY, HIST_SECRET = "hist-key", "hist-secret"
HIST_END_MS = 1_790_000_000_000  # fixed so the seeded history is the same on every run
HIST_EXECUTIONS = 2500


def pybit_http(venue: VenueProcess, key: str, secret: str, **kw: object) -> HTTP:
    session = HTTP(api_key=key, api_secret=secret, max_retries=1, **kw)
    session.endpoint = venue.rest_url
    return session


@pytest.fixture(scope="session")
def seeded_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("venue") / "state.json"
    subprocess.run([sys.executable, "-m", "services.bybit_sim", "seed-history", "--state-file", str(path),
                    "--account", f"{HIST_KEY}:{HIST_SECRET}", "--months", "1", "--executions", str(HIST_EXECUTIONS),
                    "--seed", "7", "--end-ms", str(HIST_END_MS)], cwd=REPO_ROOT, check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def venue(seeded_state: Path) -> Iterator[VenueProcess]:
    proc = VenueProcess([(KEY, SECRET), (POOR_KEY, POOR_SECRET, "50")], speed=1.0, seed=1, state_file=seeded_state,
                        extra_args=["--order-rate-limit", "1000"])
    with proc:
        yield proc


@pytest.fixture
async def admin(venue: VenueProcess) -> AsyncIterator[VenueAdmin]:
    async with VenueAdmin(venue.admin_url) as client:
        yield client
        await client.clear_faults()


@pytest.fixture
def http(venue: VenueProcess) -> HTTP:
    return pybit_http(venue, KEY, SECRET)


FAST_KEY, FAST_SECRET = "fast-key", "fast-secret"


@pytest.fixture(scope="session")
def fast_venue() -> Iterator[VenueProcess]:
    """Venue time at 1000x: a 1-minute candle closes every 60 ms of wall time."""
    with VenueProcess([(FAST_KEY, FAST_SECRET)], speed=1000.0, seed=3,
                      extra_args=["--order-rate-limit", "1000"]) as proc:
        yield proc


LIM_KEY, LIM_SECRET = "lim-key", "lim-secret"
LIM_OTHER_KEY, LIM_OTHER_SECRET = "lim-other", "lim-other-secret"


@pytest.fixture(scope="module")
def limited_venue() -> Iterator[VenueProcess]:
    """Bybit's default per-account limits, a small per-IP limit, and 8 venue hours every ~0.6 s (funding)."""
    with VenueProcess([(LIM_KEY, LIM_SECRET), (LIM_OTHER_KEY, LIM_OTHER_SECRET)], speed=50000.0, seed=9,
                      extra_args=["--ip-rate-limit", "300"]) as proc:
        yield proc
