"""The equity curve as a PNG (matplotlib's object API on the Agg canvas: no display, no pyplot
global state, so it can render in a worker thread)."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def equity_png(curve: tuple[tuple[date, Decimal], ...], title: str) -> bytes:
    fig = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    days = [d for d, _ in curve]
    values = [float(v) for _, v in curve]  # plotting only: the figures themselves stay Decimal
    if days:
        ax.plot(days, values, color="#1f77b4", linewidth=1.5, marker="o" if len(days) < 3 else None)
        ax.fill_between(days, values, 0, alpha=0.15, color="#1f77b4")
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("cumulative net PnL (USDT)")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
