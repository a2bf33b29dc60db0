"""Fill rules of the backtester (defaults = what the simulated venue does) and run settings."""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class FillRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    slippage_bps: Decimal = Field(Decimal(0), ge=0)  # market and stop fills, against the trader, to the tick
    maker_fee: Decimal = Decimal("0.0002")  # resting limits
    taker_fee: Decimal = Decimal("0.00055")  # market orders, triggered stops, marketable limits
    funding_rate: Decimal = Decimal("0.0001")  # per settlement; longs pay a positive rate
    funding_interval_h: int = Field(8, gt=0)  # settlements at 00:00, 08:00, 16:00 UTC
    check_margin: bool = True  # refuse (110007) orders the wallet cannot margin, as the venue does


class RunSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_balance: Decimal = Field(Decimal(10000), gt=0)
    leverage: Decimal = Field(Decimal(10), gt=0)  # each symbol's starting leverage (the venue's default)
    warmup_factor: int = Field(1, ge=1)  # history before the first decision = factor x the strategy's warm-up
    rules: FillRules = FillRules()
