"""ShortSeller's configuration: the defaults of strategies.md, environment overrides, one-line errors."""
from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from pydantic import ValidationError

from strategies.shortseller.config import (
    GLOBAL_ONLY_FIELDS,
    SYMBOL_FIELDS,
    LadderStep,
    ShortSellerConfig,
    config_error,
    default_config,
    env_var,
    parse_config,
)

REPO = Path(__file__).resolve().parents[4]


def test_defaults_are_the_production_values_of_strategies_md() -> None:
    cfg = default_config()
    assert cfg.bot_id == "shortseller_001"
    assert cfg.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert cfg.interval == "5m"
    exits = {s: tuple(getattr(cfg.for_symbol(s), f) for f in
                      ("stop_loss_pct", "take_profit_pct", "trail_distance_pct", "trail_activation_pct"))
             for s in cfg.symbols}
    assert exits == {
        "BTCUSDT": (Decimal("1.0"), Decimal("3.0"), Decimal("1.0"), Decimal("2.0")),
        "ETHUSDT": (Decimal("1.5"), Decimal("4.5"), Decimal("2.0"), Decimal("2.0")),
        "SOLUSDT": (Decimal("1.5"), Decimal("6.0"), Decimal("2.0"), Decimal("3.0")),
    }
    for s in cfg.symbols:
        r = cfg.for_symbol(s)
        assert (r.ema_fast_len, r.ema_slow_len, r.require_ema_order, r.daily_cross_cap) == (240, 600, False, 12)
        assert (r.cooldown_s, r.max_hold_s, r.regime_exit_grace_s) == (3600, 86400, 3600)
        assert (r.wallet_fraction_pct, r.leverage, r.tp_ladder) == (Decimal(7), Decimal(10), ())
        assert isinstance(r.stop_loss_pct, Decimal)


def test_a_symbol_override_wins_over_a_global_one_which_wins_over_the_default() -> None:
    cfg = parse_config({
        "SHORTSELLER_STOP_LOSS_PCT": "1.2",
        "SHORTSELLER_SOLUSDT_STOP_LOSS_PCT": "2",
        "SHORTSELLER_ETHUSDT_REQUIRE_EMA_ORDER": "true",
        "SHORTSELLER_BTCUSDT_COOLDOWN_S": "1800",
        "SHORTSELLER_BTCUSDT_TP_LADDER": "1.5:50, 2.5:25",
        "SHORTSELLER_TAKE_PROFIT_PCT": "",  # empty: not set
        "PATH": "/usr/bin",  # not ours: ignored
    })
    btc, eth, sol = (cfg.for_symbol(s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    assert (btc.stop_loss_pct, eth.stop_loss_pct, sol.stop_loss_pct) == (Decimal("1.2"), Decimal("1.2"), Decimal(2))
    assert (btc.take_profit_pct, sol.take_profit_pct) == (Decimal("3.0"), Decimal("6.0"))
    assert (btc.require_ema_order, eth.require_ema_order) == (False, True)
    assert (btc.cooldown_s, eth.cooldown_s) == (1800, 3600)
    assert btc.tp_ladder == (LadderStep(profit_pct=Decimal("1.5"), close_pct=Decimal(50)),
                             LadderStep(profit_pct=Decimal("2.5"), close_pct=Decimal(25)))
    assert eth.tp_ladder == ()


def test_symbols_and_interval_are_read() -> None:
    cfg = parse_config({"SHORTSELLER_SYMBOLS": " ethusdt,BTCUSDT ", "SHORTSELLER_INTERVAL": "15m"})
    assert cfg.symbols == ("ETHUSDT", "BTCUSDT")
    assert cfg.interval == "15m"
    # Bybit's names (as LISTENER_KLINE_INTERVAL) are read as the runtime's
    assert [parse_config({"SHORTSELLER_INTERVAL": v}).interval for v in ("5", "60", "D")] == ["5m", "1h", "1d"]
    with pytest.raises(KeyError):
        cfg.for_symbol("SOLUSDT")


def test_another_symbol_is_traded_once_its_exits_are_given() -> None:
    env = {"SHORTSELLER_SYMBOLS": "BTCUSDT,XRPUSDT"}
    env |= {f"SHORTSELLER_XRPUSDT_{f}": v for f, v in
            (("STOP_LOSS_PCT", "2"), ("TAKE_PROFIT_PCT", "5"), ("TRAIL_DISTANCE_PCT", "2"), ("TRAIL_ACTIVATION_PCT", "0"))}
    xrp = parse_config(env).for_symbol("XRPUSDT")
    assert (xrp.stop_loss_pct, xrp.trail_activation_pct, xrp.ema_slow_len) == (Decimal(2), Decimal(0), 600)


@pytest.mark.parametrize(("env", "line"), [
    ({"SHORTSELLER_BTCUSDT_STOP_LOSS_PCT": "-1"}, "SHORTSELLER_BTCUSDT_STOP_LOSS_PCT=-1: must be greater than 0"),
    ({"SHORTSELLER_STOP_LOSS_PCT": "0"}, "SHORTSELLER_STOP_LOSS_PCT=0: must be greater than 0"),
    ({"SHORTSELLER_SOLUSDT_TAKE_PROFIT_PCT": "-3"}, "SHORTSELLER_SOLUSDT_TAKE_PROFIT_PCT=-3: must be greater than 0"),
    ({"SHORTSELLER_TAKE_PROFIT_PCT": "0"}, "SHORTSELLER_TAKE_PROFIT_PCT=0: must be greater than 0"),
    ({"SHORTSELLER_TRAIL_DISTANCE_PCT": "abc"}, "SHORTSELLER_TRAIL_DISTANCE_PCT=abc: not a number"),
    ({"SHORTSELLER_ETHUSDT_TRAIL_ACTIVATION_PCT": "NaN"}, "SHORTSELLER_ETHUSDT_TRAIL_ACTIVATION_PCT=NaN: not a finite number"),
    ({"SHORTSELLER_COOLDOWN_S": "1.5"}, "SHORTSELLER_COOLDOWN_S=1.5: not a whole number"),
    ({"SHORTSELLER_COOLDOWN_S": "-60"}, "SHORTSELLER_COOLDOWN_S=-60: must be greater than or equal to 0"),
    ({"SHORTSELLER_DAILY_CROSS_CAP": "0"}, "SHORTSELLER_DAILY_CROSS_CAP=0: must be greater than or equal to 1"),
    ({"SHORTSELLER_REQUIRE_EMA_ORDER": "maybe"}, "SHORTSELLER_REQUIRE_EMA_ORDER=maybe: not a boolean (true or false)"),
    ({"SHORTSELLER_WALLET_FRACTION_PCT": "120"}, "SHORTSELLER_WALLET_FRACTION_PCT=120: must be less than or equal to 100"),
    ({"SHORTSELLER_SYMBOLS": "BTCUSDT,XRPUSDT"},
     "SHORTSELLER_SYMBOLS: unknown symbol XRPUSDT (known: BTCUSDT, ETHUSDT, SOLUSDT); to trade it set "
     "SHORTSELLER_XRPUSDT_STOP_LOSS_PCT, SHORTSELLER_XRPUSDT_TAKE_PROFIT_PCT, "
     "SHORTSELLER_XRPUSDT_TRAIL_DISTANCE_PCT, SHORTSELLER_XRPUSDT_TRAIL_ACTIVATION_PCT"),
    ({"SHORTSELLER_SYMBOLS": "BTCUSD"}, "SHORTSELLER_SYMBOLS=BTCUSD: 'BTCUSD' is not a USDT perpetual symbol (e.g. BTCUSDT)"),
    ({"SHORTSELLER_SYMBOLS": "BTCUSDT,BTCUSDT"}, "SHORTSELLER_SYMBOLS=BTCUSDT,BTCUSDT: a symbol is listed twice"),
    ({"SHORTSELLER_SYMBOLS": " , "}, "SHORTSELLER_SYMBOLS= , : no symbols"),
    ({"SHORTSELLER_SYMBOLS": "BTCUSDT", "SHORTSELLER_SOLUSDT_STOP_LOSS_PCT": "2"},
     "SHORTSELLER_SOLUSDT_STOP_LOSS_PCT: SOLUSDT is not traded (SHORTSELLER_SYMBOLS=BTCUSDT)"),
    ({"SHORTSELLER_XRPUSDT_STOP_LOSS_PCT": "2"},
     "SHORTSELLER_XRPUSDT_STOP_LOSS_PCT: XRPUSDT is not traded (SHORTSELLER_SYMBOLS=BTCUSDT,ETHUSDT,SOLUSDT)"),
    ({"SHORTSELLER_STOPLOSS_PCT": "2"}, "SHORTSELLER_STOPLOSS_PCT: unknown ShortSeller setting (see .env.example)"),
    ({"SHORTSELLER_BTCUSDT_INTERVAL": "15"}, "SHORTSELLER_BTCUSDT_INTERVAL: unknown ShortSeller setting (see .env.example)"),
    ({"SHORTSELLER_INTERVAL": "7"},
     "SHORTSELLER_INTERVAL=7: must be '1m', '5m', '15m', '30m', '1h', '4h' or '1d'"),
    ({"SHORTSELLER_EMA_FAST_LEN": "600"},
     "BTCUSDT: ema_fast_len (600) must be below ema_slow_len (600) (variables SHORTSELLER_BTCUSDT_* or SHORTSELLER_*)"),
    ({"SHORTSELLER_LEVERAGE": "100"},
     "BTCUSDT: stop_loss_pct 1.0 is at or beyond the liquidation distance at leverage 100 (1 %) "
     "(variables SHORTSELLER_BTCUSDT_* or SHORTSELLER_*)"),
    ({"SHORTSELLER_TP_LADDER": "2:50,1:50"},
     "BTCUSDT: tp_ladder levels must rise strictly (variables SHORTSELLER_BTCUSDT_* or SHORTSELLER_*)"),
    ({"SHORTSELLER_TP_LADDER": "1:60,2:60"},
     "BTCUSDT: tp_ladder closes more than 100 % of the position (variables SHORTSELLER_BTCUSDT_* or SHORTSELLER_*)"),
    ({"SHORTSELLER_BTCUSDT_TP_LADDER": "3:50"},
     "BTCUSDT: tp_ladder level 3 is not below take_profit_pct 3.0 (variables SHORTSELLER_BTCUSDT_* or SHORTSELLER_*)"),
    ({"SHORTSELLER_TP_LADDER": "1.5"},
     "SHORTSELLER_TP_LADDER=1.5: each step is profit_pct:close_pct (e.g. 1.5:50,2.5:25)"),
    ({"SHORTSELLER_TP_LADDER": "1.5:0"}, "SHORTSELLER_TP_LADDER=1.5:0: must be greater than 0"),
])
def test_bad_configuration_is_one_clear_line(env: dict[str, str], line: str) -> None:
    assert config_error(env) == line


def test_valid_configuration_has_no_error_and_the_bot_keys_are_not_ours_to_refuse() -> None:
    assert config_error({}) is None
    assert config_error({"SHORTSELLER_BYBIT_API_KEY": "k", "SHORTSELLER_BYBIT_API_SECRET": "s"}) is None


def test_env_example_documents_every_variable() -> None:
    documented = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
                  if "=" in line and not line.startswith("#")}
    for field in (*GLOBAL_ONLY_FIELDS, *SYMBOL_FIELDS):
        assert env_var(field) in documented, env_var(field)
    # copied as it is, the example configures the defaults
    example = {k: v for k, v in (line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                                 if line.startswith("SHORTSELLER_"))}
    assert parse_config(example) == default_config()


def test_load_config_exits_2_with_the_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from strategies.shortseller.config import load_config; load_config()"],
        cwd=tmp_path, env={"PYTHONPATH": str(REPO), "SHORTSELLER_BTCUSDT_STOP_LOSS_PCT": "-1"},
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "config error: SHORTSELLER_BTCUSDT_STOP_LOSS_PCT=-1: must be greater than 0"


def test_load_config_reads_the_dotenv_file_under_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SHORTSELLER_COOLDOWN_S=600\nSHORTSELLER_LEVERAGE=5\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from strategies.shortseller.config import load_config; "
                               "r = load_config().for_symbol('ETHUSDT'); print(r.cooldown_s, r.leverage)"],
        cwd=tmp_path, env={"PYTHONPATH": str(REPO), "SHORTSELLER_LEVERAGE": "3"},
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["600", "3"]


def test_the_config_takes_the_backtest_clis_key_value_settings() -> None:
    """`--set stop_loss_pct=2 --set tp_ladder=1:50,2:25` reach the model as strings (tuples split on commas)."""
    cfg = ShortSellerConfig.model_validate({"symbols": ("ETHUSDT", "SOLUSDT"), "stop_loss_pct": "2",
                                            "tp_ladder": ("1:50", "2:25"), "cooldown_s": "600"})
    eth = cfg.for_symbol("ETHUSDT")
    assert (eth.stop_loss_pct, eth.take_profit_pct, eth.cooldown_s) == (Decimal(2), Decimal("4.5"), 600)
    assert eth.tp_ladder == (LadderStep(profit_pct=Decimal(1), close_pct=Decimal(50)),
                             LadderStep(profit_pct=Decimal(2), close_pct=Decimal(25)))
    assert [r.symbol for r in cfg.rules] == ["ETHUSDT", "SOLUSDT"]
    assert cfg.model_dump()["rules"][1]["take_profit_pct"] == Decimal("6.0")  # reports show resolved rules


@pytest.mark.parametrize(("data", "message"), [
    ({"stop_loss_pct": "-1"}, "BTCUSDT stop_loss_pct: must be greater than 0"),
    ({"symbols": ("XRPUSDT",)}, "XRPUSDT: unknown symbol (known: BTCUSDT, ETHUSDT, SOLUSDT)"),
    ({"per_symbol": {"XRPUSDT": {"stop_loss_pct": 1}}}, "XRPUSDT: has settings but is not traded"),
    ({"per_symbol": {"BTCUSDT": {"interval": "1h"}}}, "BTCUSDT interval: not a per-symbol setting"),
    ({"symbols": ()}, "no symbols to trade"),
    ({"tp_ladder": "1.5"}, "each step is profit_pct:close_pct"),
    ({"stoploss": "1"}, "Extra inputs are not permitted"),
])
def test_bad_settings_given_to_the_model_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ShortSellerConfig.model_validate(data)
