-- Grants nothing uses (issue 12 item 9). The listener only inserts fills (ON CONFLICT DO NOTHING; the
-- owner corrects a fill by hand), and no strategy process applies the PnL queue (the listener and
-- every C2 report do). tests/integration/foundation/test_grants.py holds every grant of the schema.
REVOKE UPDATE ON trading.fills FROM listener_user;
REVOKE EXECUTE ON FUNCTION trading.pnl_refresh() FROM strategy_user;
