-- PnL aggregates off the listener's write path.
--
-- Until now the insert trigger replayed the PnL books inside the listener's own transaction: about
-- 0.8 ms per statement and 30 us per fill on the single writer's critical path. Now the insert
-- trigger only queues the new fill ids in trading.pnl_pending (one row each), and
-- trading.pnl_refresh() applies the queue with exactly the method of migration 0031: order-free sums
-- added once per queued fill, then one replay per (bot, symbol) from the earliest queued fill (from
-- the pair's state when it is later than everything applied, otherwise from the last flat point
-- before it). Readers call pnl_refresh() before they read, so reports stay exact; the C2 service
-- also calls it on a timer so that a read rarely finds much to apply.
--
-- Fills committed while a refresh runs (each statement reads the newest commits) still have their
-- queue rows: the replay and a rebuild leave them out, and the refresh that takes them adds their
-- sums and replays from before them. So every fill is counted once, by whichever takes its queue row.

CREATE TABLE trading.pnl_pending (
    fill_id   bigint PRIMARY KEY  -- probed once per replayed fill: is it still queued?
);
COMMENT ON TABLE trading.pnl_pending IS 'fills not yet applied to the PnL aggregates; drained by trading.pnl_refresh()';

-- The refresh lock: one refresher at a time, and rebuilds (owner corrections) never interleave with it.
CREATE FUNCTION trading.pnl_lock() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('pnl:refresh', 0))
$$;

CREATE OR REPLACE FUNCTION trading.pnl_on_fills_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    INSERT INTO trading.pnl_pending (fill_id) SELECT id FROM new_rows;
    RETURN NULL;
END $$;

-- As in 0031, except that fills still queued are left out of the replay: they are committed after
-- the refresh took its queue, their sums are not counted yet, and the refresh that takes them
-- replays from before them.
CREATE OR REPLACE FUNCTION trading.pnl_replay(p_bot text, p_symbol text, p_time timestamptz, p_seq bigint, p_exec text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
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
        SELECT f.exec_time, COALESCE(f.seq, 0) AS seq, f.exec_id, f.exec_type, f.side, f.exec_price, f.exec_qty,
               f.commission
          FROM trading.fills f
         WHERE f.bot_id = p_bot AND f.symbol = p_symbol
           AND (k_time IS NULL
                OR (f.exec_time >= k_time
                    AND (f.exec_time, COALESCE(f.seq, 0), f.exec_id COLLATE "C") > (k_time, k_seq, k_exec COLLATE "C")))
           AND NOT EXISTS (SELECT 1 FROM trading.pnl_pending q WHERE q.fill_id = f.id)
         ORDER BY f.exec_time, COALESCE(f.seq, 0), f.exec_id COLLATE "C"
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

-- Applies every queued fill; returns how many queue rows it took. Safe to call at any time, by
-- several sessions at once (they take turns).
CREATE FUNCTION trading.pnl_refresh() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
DECLARE
    ids bigint[];
    p record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM trading.pnl_pending) THEN
        RETURN 0;
    END IF;
    PERFORM trading.pnl_lock();
    WITH taken AS (DELETE FROM trading.pnl_pending RETURNING fill_id)
    SELECT array_agg(fill_id) INTO ids FROM taken;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('pnl:' || bot_id || ':' || symbol, 0))
       FROM (SELECT DISTINCT f.bot_id, f.symbol FROM trading.fills f WHERE f.id = ANY (ids) ORDER BY 1, 2) pairs;
    INSERT INTO trading.pnl_daily AS t (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding)
    SELECT bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date, count(*),
           count(*) FILTER (WHERE exec_type = 'Trade'),
           COALESCE(sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'), 0),
           COALESCE(sum(CASE WHEN side = 'Buy' THEN -exec_qty ELSE exec_qty END * exec_price) FILTER (
               WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
                 AND side IN ('Buy', 'Sell')), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type <> 'Funding'), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type = 'Funding'), 0)
      FROM trading.fills
     WHERE id = ANY (ids)
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (bot_id, symbol, day) DO UPDATE
       SET fill_rows = t.fill_rows + EXCLUDED.fill_rows, trades = t.trades + EXCLUDED.trades,
           volume = t.volume + EXCLUDED.volume, cash = t.cash + EXCLUDED.cash,
           fees = t.fees + EXCLUDED.fees, funding = t.funding + EXCLUDED.funding;
    FOR p IN
        SELECT DISTINCT ON (bot_id, symbol) bot_id, symbol, exec_time, COALESCE(seq, 0) AS seq, exec_id
          FROM trading.fills
         WHERE id = ANY (ids)
         ORDER BY bot_id, symbol, exec_time, COALESCE(seq, 0), exec_id COLLATE "C"
    LOOP
        PERFORM trading.pnl_replay(p.bot_id, p.symbol, p.exec_time, p.seq, p.exec_id);
    END LOOP;
    RETURN cardinality(ids);
END $$;

-- A pair rebuilt from scratch counts every fill it holds now: its queued fills are dropped from the
-- queue (the refresh lock keeps a refresher from taking them at the same time); fills committed
-- after that are still queued and left to the next refresh.
CREATE OR REPLACE FUNCTION trading.pnl_rebuild_pair(p_bot text, p_symbol text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    PERFORM trading.pnl_lock();
    PERFORM pg_advisory_xact_lock(hashtextextended('pnl:' || p_bot || ':' || p_symbol, 0));
    DELETE FROM trading.pnl_pending q USING trading.fills f
     WHERE f.id = q.fill_id AND f.bot_id = p_bot AND f.symbol = p_symbol;
    DELETE FROM trading.pnl_daily WHERE bot_id = p_bot AND symbol = p_symbol;
    DELETE FROM trading.round_trips WHERE bot_id = p_bot AND symbol = p_symbol;
    DELETE FROM trading.pnl_state WHERE bot_id = p_bot AND symbol = p_symbol;
    INSERT INTO trading.pnl_daily (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding)
    SELECT bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date, count(*),
           count(*) FILTER (WHERE exec_type = 'Trade'),
           COALESCE(sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'), 0),
           COALESCE(sum(CASE WHEN side = 'Buy' THEN -exec_qty ELSE exec_qty END * exec_price) FILTER (
               WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
                 AND side IN ('Buy', 'Sell')), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type <> 'Funding'), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type = 'Funding'), 0)
      FROM trading.fills f
     WHERE bot_id = p_bot AND symbol = p_symbol
       AND NOT EXISTS (SELECT 1 FROM trading.pnl_pending q WHERE q.fill_id = f.id)
     GROUP BY 1, 2, 3;
    IF FOUND THEN
        PERFORM trading.pnl_replay(p_bot, p_symbol, '-infinity'::timestamptz, 0, '');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION trading.pnl_on_fills_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    DELETE FROM trading.pnl_pending;
    DELETE FROM trading.pnl_daily;
    DELETE FROM trading.round_trips;
    DELETE FROM trading.pnl_state;
    RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION trading.pnl_lock(), trading.pnl_refresh() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.pnl_refresh() TO listener_user, c2_user, reconciler_user, strategy_user;
