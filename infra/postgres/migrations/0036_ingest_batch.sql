-- A listener batch in one statement: its orders (and order events), then its fills with their receipt,
-- in one transaction, one round trip. Until now fills and orders were two statements on two connections:
-- two round trips through PgBouncer and two statements' fixed cost (about 0.4 ms of backend CPU each)
-- per batch, which at a few thousand fills/s in small batches was the larger part of the database's CPU.
-- p_orders and p_events are NULL when the batch has no orders.
CREATE FUNCTION trading.ingest_batch(p_batch uuid, p_fills json, p_orders json, p_events json) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, trading AS $$
BEGIN
    IF p_orders IS NOT NULL THEN
        PERFORM trading.ingest_orders(p_orders, COALESCE(p_events, '[]'));
    END IF;
    RETURN QUERY SELECT f.exec_id FROM trading.ingest_fills(p_batch, p_fills) AS f(exec_id);
END $$;

REVOKE ALL ON FUNCTION trading.ingest_batch(uuid, json, json, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.ingest_batch(uuid, json, json, json) TO listener_user;
