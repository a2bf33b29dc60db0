"""Pure trading accounting: average-cost PnL, round trips and performance metrics (no IO)."""
