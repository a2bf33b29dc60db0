"""`python -m strategies.run`: bad arguments or configuration give one line on stderr and exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET"))
            and not k.startswith(("BYBIT_", "STRATEGY_"))}
    return subprocess.run([sys.executable, "-m", "strategies.run", *args], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, env, message", [
    (["nobot"], {}, "unknown bot 'nobot'"),
    (["ema_cross", "--set", "fast"], {}, "expected KEY=VALUE"),
    (["ema_cross", "--set", "typo=1"], {}, "unknown setting 'typo' for ema_cross"),
    (["ema_cross", "--set", "fast=30", "--set", "slow=10", "--set", "bot_id=momentum_001"], {}, "fast (30) must be below slow"),
    (["ema_cross"], {}, "bot_id 'emacross_001' has no account"),
    (["ema_cross", "--set", "bot_id=momentum_001"], {}, "MOMENTUM_BYBIT_API_KEY is missing"),
    (["ema_cross", "--set", "bot_id=momentum_001"],
     {"MOMENTUM_BYBIT_API_KEY": "k", "MOMENTUM_BYBIT_API_SECRET": "s", "BYBIT_VENUE": "moon"}, "BYBIT_VENUE"),
    (["ema_cross", "--set", "bot_id=momentum_001"],
     {"MOMENTUM_BYBIT_API_KEY": "k", "MOMENTUM_BYBIT_API_SECRET": "s", "STRATEGY_READ_BLOCK_MS": "0"},
     "STRATEGY_READ_BLOCK_MS"),
])
def test_bad_arguments_and_configuration_exit_2_with_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    res = run(args, **env)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_no_bot_is_a_usage_error() -> None:
    res = run([])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
