-- The listener's two hot statements as functions: PgBouncer's transaction mode rules out prepared
-- statements, so a plain statement is parsed and planned on every batch (about 0.15 ms for the fills
-- insert alone); a PL/pgSQL function keeps its plans for the life of the server connection.
-- Same statements as before (services/websocket_listener/ingest.py), same privileges (SECURITY
-- INVOKER: they run as the listener's own role).

-- A batch of fills (JSON array of rows keyed by column name); returns the exec_id of each row that
-- was new. A row whose exec_id is stored already is neither inserted nor returned.
CREATE FUNCTION trading.ingest_fills(p_rows json) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, trading AS $$
BEGIN
    RETURN QUERY
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
    RETURNING fills.exec_id;
END $$;

-- Orders (their latest state; a late or replayed update never moves one back along its lifecycle)
-- and every distinct state seen (order_events), in one statement.
CREATE FUNCTION trading.ingest_orders(p_orders json, p_events json) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, trading AS $$
BEGIN
    WITH o AS (
        INSERT INTO trading.orders (
            order_id, bot_id, symbol, category, client_order_id, side, order_type, status, price,
            qty, avg_price, leaves_qty, cum_exec_qty, cum_exec_value, cum_exec_fee, reduce_only,
            time_in_force, stop_order_type, trigger_price, take_profit, stop_loss, cancel_type,
            reject_reason, created_time, updated_time)
        SELECT
            order_id, bot_id, symbol, category, client_order_id, side, order_type, status, price,
            qty, avg_price, leaves_qty, cum_exec_qty, cum_exec_value, cum_exec_fee, reduce_only,
            time_in_force, stop_order_type, trigger_price, take_profit, stop_loss, cancel_type,
            reject_reason, created_time, updated_time
          FROM json_populate_recordset(NULL::trading.orders, p_orders)
        ON CONFLICT (order_id) DO UPDATE SET
            symbol = EXCLUDED.symbol,
            category = EXCLUDED.category,
            client_order_id = EXCLUDED.client_order_id,
            side = EXCLUDED.side,
            order_type = EXCLUDED.order_type,
            status = EXCLUDED.status,
            price = EXCLUDED.price,
            qty = EXCLUDED.qty,
            avg_price = EXCLUDED.avg_price,
            leaves_qty = EXCLUDED.leaves_qty,
            cum_exec_qty = EXCLUDED.cum_exec_qty,
            cum_exec_value = EXCLUDED.cum_exec_value,
            cum_exec_fee = EXCLUDED.cum_exec_fee,
            reduce_only = EXCLUDED.reduce_only,
            time_in_force = EXCLUDED.time_in_force,
            stop_order_type = EXCLUDED.stop_order_type,
            trigger_price = EXCLUDED.trigger_price,
            take_profit = EXCLUDED.take_profit,
            stop_loss = EXCLUDED.stop_loss,
            cancel_type = EXCLUDED.cancel_type,
            reject_reason = EXCLUDED.reject_reason,
            created_time = EXCLUDED.created_time,
            updated_time = EXCLUDED.updated_time,
            updated_at = now()
        WHERE (EXCLUDED.updated_time, trading.order_status_rank(EXCLUDED.status), EXCLUDED.cum_exec_qty)
           >= (orders.updated_time, trading.order_status_rank(orders.status), orders.cum_exec_qty))
    INSERT INTO trading.order_events (order_id, bot_id, status, cum_exec_qty, leaves_qty, updated_time)
    SELECT order_id, bot_id, status, cum_exec_qty, leaves_qty, updated_time
      FROM json_populate_recordset(NULL::trading.order_events, p_events)
    ON CONFLICT DO NOTHING;
END $$;

REVOKE ALL ON FUNCTION trading.ingest_fills(json), trading.ingest_orders(json, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.ingest_fills(json), trading.ingest_orders(json, json) TO listener_user;
