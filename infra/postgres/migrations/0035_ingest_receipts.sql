-- A fills insert whose answer is lost (the connection dies after the commit, before the reply) has an
-- unknown outcome. The listener retries it, and until now the retry's ON CONFLICT DO NOTHING returned
-- none of the rows the lost attempt had stored: those fills were in trading.fills but never published,
-- applied to the position cross-check or counted for their sync batch.
--
-- Now every fills batch carries an id chosen by the listener, kept across its retries, and the insert
-- writes a receipt (batch id -> the exec_ids that were new) in the same transaction. An attempt that
-- finds its batch's receipt returns the receipt's exec_ids, inserting nothing: what the lost attempt
-- committed is announced once, by the retry. Receipts are only read by a retry of the same batch, so
-- the listener prunes them after 15 minutes (trading.prune_ingest_receipts), never while a write of its
-- own is retrying.

CREATE TABLE trading.ingest_receipts (
    batch_id     uuid PRIMARY KEY,
    exec_ids     text[] NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_receipts_committed_idx ON trading.ingest_receipts USING brin (committed_at);
COMMENT ON TABLE trading.ingest_receipts IS 'per listener fills batch: the exec_ids it inserted, so a retry after a lost commit answer announces them';

DROP FUNCTION trading.ingest_fills(json);

CREATE FUNCTION trading.ingest_fills(p_batch uuid, p_rows json) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, trading AS $$
DECLARE
    new_ids text[];
BEGIN
    SELECT r.exec_ids INTO new_ids FROM trading.ingest_receipts r WHERE r.batch_id = p_batch;
    IF NOT FOUND THEN
        WITH ins AS (
            INSERT INTO trading.fills (
                bot_id, symbol, category, exec_id, order_id, client_order_id, side, exec_type, exec_price,
                exec_qty, exec_value, exec_time, commission, fee_rate, fee_currency, is_maker, closed_size,
                exec_pnl, order_type, order_price, order_qty, leaves_qty, mark_price, stop_order_type, seq,
                close_reason, source)
            SELECT
                bot_id, symbol, category, exec_id, order_id, client_order_id, side, exec_type, exec_price,
                exec_qty, exec_value, exec_time, commission, fee_rate, fee_currency, is_maker, closed_size,
                exec_pnl, order_type, order_price, order_qty, leaves_qty, mark_price, stop_order_type, seq,
                close_reason, source
              FROM json_populate_recordset(NULL::trading.fills, p_rows)
            ON CONFLICT (exec_id) DO NOTHING
            RETURNING fills.exec_id)
        SELECT COALESCE(array_agg(ins.exec_id), '{}') INTO new_ids FROM ins;
        INSERT INTO trading.ingest_receipts (batch_id, exec_ids) VALUES (p_batch, new_ids)
        ON CONFLICT (batch_id) DO NOTHING;
        IF NOT FOUND THEN
            -- The lost attempt was still running on the server and committed meanwhile: this attempt's
            -- rows all waited for it and conflicted, and its receipt (visible now) is the answer.
            SELECT r.exec_ids INTO STRICT new_ids FROM trading.ingest_receipts r WHERE r.batch_id = p_batch;
        END IF;
    END IF;
    RETURN QUERY SELECT unnest(new_ids);
END $$;

CREATE FUNCTION trading.prune_ingest_receipts(p_keep interval DEFAULT interval '15 minutes') RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, trading AS $$
    WITH gone AS (DELETE FROM trading.ingest_receipts WHERE committed_at < now() - p_keep RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;

GRANT SELECT, INSERT, DELETE ON trading.ingest_receipts TO listener_user;
REVOKE ALL ON FUNCTION trading.ingest_fills(uuid, json), trading.prune_ingest_receipts(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.ingest_fills(uuid, json), trading.prune_ingest_receipts(interval) TO listener_user;
