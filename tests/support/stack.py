"""The test suite's own private PostgreSQL + PgBouncer + Redis (real servers, its own ports)."""
from __future__ import annotations

import os
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


def start_test_stack() -> TestStack:
    base = int(os.environ.get("ALPHA_TEST_PORT_BASE", DEFAULT_TEST_PORT_BASE))
    local = LocalStack(StackConfig.for_base(REPO / ".run" / f"test-{base}", base))
    local.up()
    return TestStack(local)
