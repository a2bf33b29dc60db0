"""The test suite's own private PostgreSQL + PgBouncer + Redis (real servers, its own ports)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from infra.localstack import LocalStack, StackConfig
from shared.settings import DatabaseSettings, RedisSettings

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEST_PORT_BASE = 25400


@dataclass
class TestStack:
    __test__ = False  # a fixture value, not a test class
    local: LocalStack

    @property
    def env(self) -> dict[str, str]:
        return self.local.env()

    @property
    def db(self) -> DatabaseSettings:
        return DatabaseSettings(**self.env)

    @property
    def redis(self) -> RedisSettings:
        return RedisSettings(**self.env)

    def stop(self, part: str) -> None:
        self.local.stop(part)

    def start(self, part: str) -> None:
        self.local.start(part)

    def status(self) -> dict[str, bool]:
        return self.local.status()


def _stack_at(base: int) -> LocalStack:
    return LocalStack(StackConfig.for_base(REPO / ".run" / f"test-{base}", base))


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _worker_index() -> int:
    """pytest-xdist's worker number (gw0 -> 0, ...); 0 without xdist. Each worker has its own stack."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def choose_port_base() -> int:
    """ALPHA_TEST_PORT_BASE when set (plus 10 per xdist worker); otherwise the first base whose ports
    are free or already served by this checkout's own test stack (another checkout's stack may hold
    the default), each xdist worker scanning its own range."""
    worker = _worker_index()
    if "ALPHA_TEST_PORT_BASE" in os.environ:
        return int(os.environ["ALPHA_TEST_PORT_BASE"]) + 10 * worker
    first = DEFAULT_TEST_PORT_BASE + 400 * worker
    for base in range(first, first + 400, 10):
        ports = (base, base + 1, base + 2)
        if any(_stack_at(base).status().values()) or all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range for the test stack")


def start_test_stack() -> TestStack:
    local = _stack_at(choose_port_base())
    local.up()
    return TestStack(local)
