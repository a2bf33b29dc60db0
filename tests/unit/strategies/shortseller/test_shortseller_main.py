"""`python -m strategies.shortseller`: bad configuration gives one clear line on stderr and exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
KEYS = {"SHORTSELLER_BYBIT_API_KEY": "k", "SHORTSELLER_BYBIT_API_SECRET": "s"}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET"))
            and not k.startswith(("BYBIT_", "STRATEGY_", "SHORTSELLER_"))}
    base["PYTHONPATH"] = str(REPO)
    with tempfile.TemporaryDirectory() as cwd:  # no .env file: only what the test sets
        return subprocess.run([sys.executable, "-m", "strategies.shortseller", *args], cwd=cwd, env={**base, **env},
                              capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, message", [
    ({**KEYS, "SHORTSELLER_STOP_LOSS_PCT": "-1"}, "SHORTSELLER_STOP_LOSS_PCT=-1: must be greater than 0"),
    ({**KEYS, "SHORTSELLER_SOLUSDT_STOP_LOSS_PCT": "-0.5"}, "SHORTSELLER_SOLUSDT_STOP_LOSS_PCT=-0.5: must be greater"),
    ({**KEYS, "SHORTSELLER_TAKE_PROFIT_PCT": "-3"}, "SHORTSELLER_TAKE_PROFIT_PCT=-3: must be greater than 0"),
    ({**KEYS, "SHORTSELLER_BTCUSDT_TAKE_PROFIT_PCT": "-2"}, "SHORTSELLER_BTCUSDT_TAKE_PROFIT_PCT=-2: must be greater"),
    ({**KEYS, "SHORTSELLER_SYMBOLS": "BTCUSDT,DOGEUSDT"}, "unknown symbol DOGEUSDT"),
    ({**KEYS, "SHORTSELLER_XRPUSDT_STOP_LOSS_PCT": "1"}, "SHORTSELLER_XRPUSDT_STOP_LOSS_PCT: XRPUSDT is not traded"),
    ({**KEYS, "SHORTSELLER_STOP_LOS_PCT": "1"}, "SHORTSELLER_STOP_LOS_PCT: unknown ShortSeller setting"),
    ({}, "SHORTSELLER_BYBIT_API_KEY is missing"),
    ({**KEYS, "BYBIT_VENUE": "moon"}, "BYBIT_VENUE"),
    ({**KEYS, "STRATEGY_READ_BLOCK_MS": "0"}, "STRATEGY_READ_BLOCK_MS"),
])
def test_bad_configuration_is_one_line_and_exit_2(env: dict[str, str], message: str) -> None:
    res = run(**env)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert res.stdout == ""


def test_arguments_are_refused_with_one_line() -> None:
    res = run("--set", "stop_loss_pct=1", **KEYS)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "takes no arguments" in lines[0] and "SHORTSELLER_" in lines[0], res.stderr


def test_the_secret_is_not_in_the_error_line() -> None:
    res = run(SHORTSELLER_BYBIT_API_KEY="k", SHORTSELLER_BYBIT_API_SECRET="very-secret-value-123",
              SHORTSELLER_STOP_LOSS_PCT="-1")
    assert res.returncode == 2 and "very-secret-value-123" not in res.stderr + res.stdout
