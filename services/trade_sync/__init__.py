"""trade_sync: reconcile trading.fills with the exchange and backfill history (through the listener)."""
