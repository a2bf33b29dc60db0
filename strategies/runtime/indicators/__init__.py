"""Indicators, twice: ``vectorised`` (whole arrays) and ``incremental`` (one bar at a time).

``warmup`` gives each one's first valid bar index, for sizing a strategy's history.
"""
from strategies.runtime.indicators import incremental, vectorised, warmup

__all__ = ["incremental", "vectorised", "warmup"]
