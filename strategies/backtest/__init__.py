"""The backtester: strategies on historical candles with the simulated venue's fill rules."""
