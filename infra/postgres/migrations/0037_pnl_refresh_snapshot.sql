-- One PnL refresh counts one consistent set of fills.
--
-- trading.pnl_refresh() (0032) takes the queue (pnl_pending) in one statement and replays each pair in
-- later statements, each with a newer snapshot (READ COMMITTED). A fill committed in between was read
-- by the replay (open cost, round trips) while its queue row, and so its cash flow, waited for the next
-- refresh: realised PnL was off by that fill's notional until then, and a report could read it so.
--
-- Now each queue row names its fills (fill_ids: the ids of the insert statement's fills of that
-- (bot, symbol, day)), and a replay skips every fill whose queue row is still in pnl_pending in the
-- replay's own snapshot. Queue rows and their fills commit together, and every path that takes queue
-- rows (pnl_refresh, pnl_rebuild_pair) holds the refresh lock, so in the replay's snapshot the rows
-- still queued are exactly those committed after the refresh took the queue: a refresh applies
-- exactly the fills visible when it took the queue, all of a fill (sums, open cost, trips) or none.
-- The aggregates therefore always equal a replay of the fills whose queue rows are gone, in any
-- snapshot a reader takes. Queue rows written before this migration have no ids; they were committed
-- before it, so the next refresh takes them before any replay runs.

ALTER TABLE trading.pnl_pending ADD COLUMN fill_ids bigint[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN trading.pnl_pending.fill_ids IS 'trading.fills ids of this row''s fills: a replay skips them until the row is taken';
-- Each replay looks up its pair's queue rows: by index, so neither a long queue (a backfill outrunning
-- the refresher) nor the dead rows between two vacuums of this churning table are scanned per pair.
CREATE INDEX pnl_pending_pair_idx ON trading.pnl_pending (bot_id, symbol);

CREATE OR REPLACE FUNCTION trading.pnl_on_fills_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    -- Shared with other inserts, exclusive for a rebuild of the pair (see pnl_rebuild_pair).
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('pnl:' || bot_id || ':' || symbol, 0))
       FROM (SELECT DISTINCT bot_id, symbol FROM new_rows ORDER BY 1, 2) pairs;
    INSERT INTO trading.pnl_pending (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding,
                                     first_time, first_seq, first_exec_id, fill_ids)
    SELECT s.bot_id, s.symbol, s.day, s.fill_rows, s.trades, s.volume, s.cash, s.fees, s.funding,
           f.exec_time, f.seq, f.exec_id, s.ids
      FROM (SELECT bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date AS day,
                   count(*),
                   count(*) FILTER (WHERE exec_type = 'Trade'),
                   COALESCE(sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'), 0),
                   COALESCE(sum(CASE WHEN side = 'Buy' THEN -exec_qty ELSE exec_qty END * exec_price) FILTER (
                       WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
                         AND side IN ('Buy', 'Sell')), 0),
                   COALESCE(sum(commission) FILTER (WHERE exec_type <> 'Funding'), 0),
                   COALESCE(sum(commission) FILTER (WHERE exec_type = 'Funding'), 0),
                   array_agg(id)
              FROM new_rows GROUP BY 1, 2, 3) AS s(bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding, ids)
      JOIN (SELECT DISTINCT ON (bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date)
                   bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date AS day, exec_time, COALESCE(seq, 0) AS seq, exec_id
              FROM new_rows
             ORDER BY bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date, exec_time, COALESCE(seq, 0),
                      exec_id COLLATE "C") AS f
     USING (bot_id, symbol, day);
    RETURN NULL;
END $$;

-- As in 0031, plus: the fills still queued are skipped (see above). Planned afresh every time (0032).
CREATE OR REPLACE FUNCTION trading.pnl_replay(p_bot text, p_symbol text, p_time timestamptz, p_seq bigint, p_exec text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    st trading.pnl_state%ROWTYPE;
    k_time timestamptz; k_seq bigint; k_exec text;
    r record;
    q numeric; close_qty numeric; close_fee numeric; rest numeric; v_net numeric;
    cur_day date; d date;
    d_trips integer := 0; d_wins integer := 0; d_losses integer := 0;
    d_gw numeric := 0; d_gl numeric := 0; d_hold numeric := 0;
BEGIN
    SELECT * INTO st FROM trading.pnl_state WHERE bot_id = p_bot AND symbol = p_symbol;
    IF FOUND AND st.last_time IS NOT NULL
       AND (p_time, p_seq, p_exec COLLATE "C") > (st.last_time, st.last_seq, st.last_exec_id COLLATE "C") THEN
        k_time := st.last_time; k_seq := st.last_seq; k_exec := st.last_exec_id;
    ELSE
        SELECT closed_at, close_seq, close_exec_id INTO k_time, k_seq, k_exec
          FROM trading.round_trips
         WHERE bot_id = p_bot AND symbol = p_symbol AND NOT left_open
           AND (closed_at, close_seq, close_exec_id COLLATE "C") < (p_time, p_seq, p_exec COLLATE "C")
         ORDER BY closed_at DESC, close_seq DESC, close_exec_id COLLATE "C" DESC
         LIMIT 1;
        UPDATE trading.pnl_daily p
           SET trips = p.trips - x.n, wins = p.wins - x.w, losses = p.losses - x.l,
               gross_win = p.gross_win - x.gw, gross_loss = p.gross_loss - x.gl, holding_s = p.holding_s - x.h
          FROM (SELECT (closed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
                       count(*) FILTER (WHERE net > 0) AS w, count(*) FILTER (WHERE net < 0) AS l,
                       COALESCE(sum(net) FILTER (WHERE net > 0), 0) AS gw,
                       COALESCE(-sum(net) FILTER (WHERE net < 0), 0) AS gl,
                       COALESCE(sum(EXTRACT(EPOCH FROM closed_at - opened_at)), 0) AS h
                  FROM trading.round_trips
                 WHERE bot_id = p_bot AND symbol = p_symbol
                   AND (k_time IS NULL
                        OR (closed_at, close_seq, close_exec_id COLLATE "C") > (k_time, k_seq, k_exec COLLATE "C"))
                 GROUP BY 1) x
         WHERE p.bot_id = p_bot AND p.symbol = p_symbol AND p.day = x.day;
        DELETE FROM trading.round_trips
         WHERE bot_id = p_bot AND symbol = p_symbol
           AND (k_time IS NULL
                OR (closed_at, close_seq, close_exec_id COLLATE "C") > (k_time, k_seq, k_exec COLLATE "C"));
        st := NULL;
        st.bot_id := p_bot; st.symbol := p_symbol; st.qty := 0; st.open_cost := 0;
        st.trip_cash := 0; st.trip_fees := 0; st.trip_funding := 0; st.trip_trades := 0;
        st.last_time := k_time; st.last_seq := k_seq; st.last_exec_id := k_exec;
    END IF;

    FOR r IN
        SELECT exec_time, COALESCE(seq, 0) AS seq, exec_id, exec_type, side, exec_price, exec_qty, commission
          FROM trading.fills
         WHERE bot_id = p_bot AND symbol = p_symbol
           AND (k_time IS NULL
                OR (exec_time >= k_time
                    AND (exec_time, COALESCE(seq, 0), exec_id COLLATE "C") > (k_time, k_seq, k_exec COLLATE "C")))
           -- Not the fills still queued: committed after this refresh took the queue (same snapshot).
           AND id NOT IN (SELECT u.id FROM trading.pnl_pending q CROSS JOIN LATERAL unnest(q.fill_ids) AS u(id)
                           WHERE q.bot_id = p_bot AND q.symbol = p_symbol)
         ORDER BY exec_time, COALESCE(seq, 0), exec_id COLLATE "C"
    LOOP
        d := (r.exec_time AT TIME ZONE 'UTC')::date;
        IF cur_day IS NOT NULL AND d <> cur_day THEN
            PERFORM trading.pnl_flush_day(p_bot, p_symbol, cur_day, st.open_cost,
                                          d_trips, d_wins, d_losses, d_gw, d_gl, d_hold);
            d_trips := 0; d_wins := 0; d_losses := 0; d_gw := 0; d_gl := 0; d_hold := 0;
        END IF;
        cur_day := d;
        IF r.exec_type = 'Funding' THEN
            IF st.qty <> 0 THEN
                st.trip_funding := st.trip_funding + r.commission;
            END IF;
        ELSIF r.exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
              AND r.side IN ('Buy', 'Sell') AND r.exec_qty <> 0 THEN
            q := CASE WHEN r.side = 'Buy' THEN r.exec_qty ELSE -r.exec_qty END;
            IF st.qty = 0 OR sign(st.qty) = sign(q) THEN
                IF st.qty = 0 THEN
                    st.opened_at := r.exec_time;
                    st.direction := CASE WHEN q > 0 THEN 'long' ELSE 'short' END;
                END IF;
                st.qty := st.qty + q;
                st.open_cost := st.open_cost + q * r.exec_price;
                st.trip_cash := st.trip_cash - q * r.exec_price;
                st.trip_fees := st.trip_fees + r.commission;
                st.trip_trades := st.trip_trades + 1;
            ELSIF abs(q) < abs(st.qty) THEN
                st.open_cost := round(st.open_cost * (st.qty + q) / st.qty, 20);
                st.qty := st.qty + q;
                st.trip_cash := st.trip_cash - q * r.exec_price;
                st.trip_fees := st.trip_fees + r.commission;
                st.trip_trades := st.trip_trades + 1;
            ELSE
                close_qty := abs(st.qty);
                close_fee := CASE WHEN abs(q) = close_qty THEN r.commission
                                  ELSE r.commission * close_qty / abs(q) END;
                st.trip_cash := st.trip_cash - sign(q) * close_qty * r.exec_price;
                st.trip_fees := st.trip_fees + close_fee;
                st.trip_trades := st.trip_trades + 1;
                rest := q - sign(q) * close_qty;
                v_net := st.trip_cash - st.trip_fees - st.trip_funding;
                INSERT INTO trading.round_trips (bot_id, symbol, direction, opened_at, closed_at, close_seq,
                                                 close_exec_id, realised, fees, funding, trade_count, left_open)
                VALUES (p_bot, p_symbol, st.direction, st.opened_at, r.exec_time, r.seq, r.exec_id,
                        st.trip_cash, st.trip_fees, st.trip_funding, st.trip_trades, rest <> 0);
                d_trips := d_trips + 1;
                IF v_net > 0 THEN d_wins := d_wins + 1; d_gw := d_gw + v_net; END IF;
                IF v_net < 0 THEN d_losses := d_losses + 1; d_gl := d_gl - v_net; END IF;
                d_hold := d_hold + EXTRACT(EPOCH FROM r.exec_time - st.opened_at);
                st.qty := 0; st.open_cost := 0; st.opened_at := NULL; st.direction := NULL;
                st.trip_cash := 0; st.trip_fees := 0; st.trip_funding := 0; st.trip_trades := 0;
                IF rest <> 0 THEN
                    st.opened_at := r.exec_time;
                    st.direction := CASE WHEN rest > 0 THEN 'long' ELSE 'short' END;
                    st.qty := rest;
                    st.open_cost := rest * r.exec_price;
                    st.trip_cash := -rest * r.exec_price;
                    st.trip_fees := r.commission - close_fee;
                    st.trip_trades := 1;
                END IF;
            END IF;
        END IF;
        st.last_time := r.exec_time; st.last_seq := r.seq; st.last_exec_id := r.exec_id;
    END LOOP;
    IF cur_day IS NOT NULL THEN
        PERFORM trading.pnl_flush_day(p_bot, p_symbol, cur_day, st.open_cost,
                                      d_trips, d_wins, d_losses, d_gw, d_gl, d_hold);
    END IF;

    INSERT INTO trading.pnl_state AS s (bot_id, symbol, last_time, last_seq, last_exec_id, qty, open_cost,
                                        opened_at, direction, trip_cash, trip_fees, trip_funding, trip_trades,
                                        updated_at)
    VALUES (p_bot, p_symbol, st.last_time, st.last_seq, st.last_exec_id, st.qty, st.open_cost, st.opened_at,
            st.direction, st.trip_cash, st.trip_fees, st.trip_funding, st.trip_trades, now())
    ON CONFLICT (bot_id, symbol) DO UPDATE
       SET last_time = EXCLUDED.last_time, last_seq = EXCLUDED.last_seq, last_exec_id = EXCLUDED.last_exec_id,
           qty = EXCLUDED.qty, open_cost = EXCLUDED.open_cost, opened_at = EXCLUDED.opened_at,
           direction = EXCLUDED.direction, trip_cash = EXCLUDED.trip_cash, trip_fees = EXCLUDED.trip_fees,
           trip_funding = EXCLUDED.trip_funding, trip_trades = EXCLUDED.trip_trades, updated_at = now();
END $$;
