"""The backtest CLI as a user runs it: a subprocess, real shipped candles."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strategies.backtest", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.parametrize("args, message", [
    (["nobot", "--from", "2025-05-01", "--to", "2025-05-02"], "unknown bot 'nobot'; known: alternate, ema_cross"),
    (["ema_cross", "--from", "2025-13-01", "--to", "2025-05-02"], "--from '2025-13-01': expected a date"),
    (["ema_cross", "--from", "2025-05-02", "--to", "2025-05-01"], "is not after --from"),
    (["ema_cross", "--from", "2025-05-01"], "required: --to"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--set", "fsat=3"], "unknown setting 'fsat'"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--set", "fast"], "expected KEY=VALUE"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--set", "fast=x"], "fast: Input should be"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--set", "fast=30", "--set", "slow=20"],
     "must be below slow"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--set", "stop_loss_pct=-1"], "stop_loss_pct"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--symbols", "DOGEUSDT"], "unknown symbol"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--interval", "7m"], "unknown interval"),
    (["ema_cross", "--from", "2019-05-01", "--to", "2019-05-02"], "no BTCUSDT 5m candles in the window"),
    (["ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--sweep", "fast=40,50", "--set", "slow=30"],
     "every combination of the sweep is invalid"),
])
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert r.stdout == ""


def test_a_malformed_candle_file_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "btc.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2025-05-01 00:00:00,100,99,98,100,1\n"
                   "2025-05-01 00:05:00,100,101,99,100,1\n")
    r = cli("ema_cross", "--from", "2025-05-01", "--to", "2025-05-02", "--candles", f"BTCUSDT={bad}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "high below max(open, close)" in r.stderr


def test_a_run_writes_report_chart_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    r = cli("ema_cross", "--symbols", "BTCUSDT,ETHUSDT", "--from", "2025-05-01", "--to", "2025-05-08",
            "--set", "stop_loss_pct=1", "--set", "slippage_bps=1", "--json", "--out", str(tmp_path / "out"),
            "--csv", str(csv_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    report = json.loads(r.stdout)
    assert report["symbols"] == ["BTCUSDT", "ETHUSDT"] and report["settings"]["rules"]["slippage_bps"] == "1"
    assert report["summary"]["trades"] == len(report["trades"]) > 10
    assert {t["exit_reason"] for t in report["trades"]} <= {"exit", "sl"}
    assert (tmp_path / "out" / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out" / "report.json").read_text())["summary"] == report["summary"]
    assert csv_path.read_text().count("\n") == len(report["trades"]) + 1


def test_a_sweep_runs_every_combination(tmp_path: Path) -> None:
    r = cli("ema_cross", "--from", "2025-05-01", "--to", "2025-05-04", "--sweep", "fast=5,8", "--sweep",
            "slow=20,30", "--workers", "2", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sorted((row["settings"]["fast"], row["settings"]["slow"]) for row in rows) == [
        ("5", "20"), ("5", "30"), ("8", "20"), ("8", "30")]
    nets = [float(row["net_pnl"]) for row in rows]
    assert nets == sorted(nets, reverse=True)
