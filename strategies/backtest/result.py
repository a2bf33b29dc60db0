"""What a backtest produced: trades, equity curve, the /performance metrics, notices; as JSON/CSV."""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.analytics.books import daily, replay
from shared.analytics.metrics import Performance, performance
from strategies.backtest.book import Trade
from strategies.runtime.model import BotFill, Notice

if TYPE_CHECKING:
    from strategies.backtest.engine import Backtest


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


def _num(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


@dataclass
class BacktestResult:
    bot: str
    config: dict[str, Any]
    settings: dict[str, Any]
    symbols: list[str]
    interval: str
    start_ms: int  # the first decision (the first candle close at or after the requested start)
    end_ms: int  # the last
    candles: int
    elapsed_s: float
    initial_balance: Decimal
    final_equity: Decimal
    trades: list[Trade]
    fills: list[BotFill]
    equity: list[tuple[int, float]]
    notices: list[Notice]
    refusals: dict[str, int]
    errors: int
    performance: Performance

    @classmethod
    def build(cls, bt: Backtest, candles: int, elapsed_s: float) -> BacktestResult:
        perf = performance(daily(replay(bt.book.ledger())))
        cfg = bt.strategy.config
        return cls(
            bot=type(bt.strategy).__name__, config=json.loads(cfg.model_dump_json()),
            settings=json.loads(bt.settings.model_dump_json()), symbols=sorted(bt.book.instruments),
            interval=bt.interval, start_ms=bt.equity[0][0] if bt.equity else bt.start_ms, end_ms=bt.equity[-1][0] if bt.equity else bt.start_ms,
            candles=candles, elapsed_s=elapsed_s, initial_balance=bt.settings.initial_balance,
            final_equity=bt.book.equity(), trades=list(bt.book.trades), fills=list(bt.book.fills),
            equity=bt.equity, notices=list(bt.ctx.notices), refusals=dict(bt.ctx.refusals),
            errors=bt.runtime.errors, performance=perf)

    def summary(self) -> dict[str, Any]:
        p = self.performance
        trips = p.trips
        peak, max_dd_pct = float(self.initial_balance), 0.0
        for _, eq in self.equity:
            peak = max(peak, eq)
            max_dd_pct = max(max_dd_pct, (peak - eq) / peak * 100 if peak > 0 else 0.0)
        ret = (self.final_equity - self.initial_balance) / self.initial_balance * 100
        return {
            "trades": len(self.trades),
            "round_trips": trips.count,
            "wins": trips.wins,
            "losses": trips.losses,
            "win_rate": _num(trips.win_rate),
            "profit_factor": _num(trips.profit_factor),
            "avg_holding_s": _num(trips.avg_holding_s),
            "realised": str(p.totals.realised),
            "fees": str(p.totals.fees),
            "funding": str(p.totals.funding),
            "net_pnl": str(p.totals.net),
            "volume": str(p.totals.volume),
            "max_drawdown": str(p.max_drawdown.amount),
            "max_drawdown_pct_of_equity": round(max_dd_pct, 4),
            "sharpe": _num(p.sharpe),
            "initial_balance": str(self.initial_balance),
            "final_equity": str(self.final_equity),
            "return_pct": str(ret.quantize(Decimal("0.0001"))),
            "exit_reasons": dict(Counter(t.exit_reason for t in self.trades)),
            "refused_entries": self.refusals,
            "strategy_errors": self.errors,
        }

    def trade_rows(self) -> list[dict[str, Any]]:
        return [{
            "symbol": t.symbol, "side": t.side, "qty": str(t.qty), "entry_time": iso(t.entry_ms),
            "exit_time": iso(t.exit_ms), "entry_price": str(t.entry_price), "exit_price": str(t.exit_price),
            "pnl": str(t.pnl), "fees": str(t.fees), "funding": str(t.funding), "net": str(t.net),
            "exit_reason": t.exit_reason, "holding_s": t.holding_s,
        } for t in self.trades]

    def to_json(self) -> dict[str, Any]:
        return {
            "bot": self.bot, "config": self.config, "settings": self.settings, "symbols": self.symbols,
            "interval": self.interval, "from": iso(self.start_ms), "to": iso(self.end_ms),
            "candles": self.candles, "elapsed_s": round(self.elapsed_s, 4),
            "summary": self.summary(), "trades": self.trade_rows(),
            "daily_equity": [[d.isoformat(), str(v)] for d, v in self.performance.equity_curve],
            "notices": [{"time": iso(n.time_ms), "kind": n.kind, **{k: str(v) for k, v in n.data.items()}}
                        for n in self.notices[:1000]],
        }

    def write_csv(self, path: Path) -> None:
        rows = self.trade_rows()
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["symbol"])
            w.writeheader()
            w.writerows(rows)

    def write_chart(self, path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(11, 4.5))
        if self.equity:
            xs = [datetime.fromtimestamp(t / 1000, timezone.utc) for t, _ in self.equity]
            ax.plot(xs, [v for _, v in self.equity], linewidth=0.9, label="equity (USDT)")
        for t in self.trades:
            ax.axvline(datetime.fromtimestamp(t.exit_ms / 1000, timezone.utc), color="green" if t.net > 0 else "red",
                       alpha=0.08, linewidth=0.8)
        ax.set_title(f"{self.bot} {','.join(self.symbols)} {self.interval}: {len(self.trades)} trades, "
                     f"net {self.performance.totals.net.quantize(Decimal('0.01'))} USDT")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    def write(self, out_dir: Path) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": out_dir / "report.json", "chart": out_dir / "equity.png", "csv": out_dir / "trades.csv"}
        paths["json"].write_text(json.dumps(self.to_json(), indent=1))
        self.write_chart(paths["chart"])
        self.write_csv(paths["csv"])
        return paths
