-- PnL aggregates for the C2 reports, kept exact by triggers on trading.fills, i.e. inside the
-- listener's own insert transaction (the single writer's path): nothing else writes them.
--
-- Method (the same as shared/analytics/ledger.py): average-cost books per (bot, symbol) over fills
-- in execution order (exec_time, COALESCE(seq, 0), exec_id in byte order). The state is the signed
-- open quantity and the signed open cost (quantity x average entry). Realised PnL of a day is
--     cash(day) + open_cost(end of day) - open_cost(end of the previous day with fills),
-- where cash is +qty x price for a sell and -qty x price for a buy. Fees and funding are costs.
-- A partial close releases open cost pro rata, rounded to 20 decimal places.
--
-- pnl_daily holds, per (bot, symbol, UTC day): order-free sums (trade count, volume, cash, fees,
-- funding), the open cost at the end of the day, and the round trips that closed that day.
-- The sums commute, so they are added straight from the inserted rows. The open cost and the round
-- trips depend on order: they are replayed. A fill later than everything applied continues from
-- pnl_state (one step); a fill older than that (out-of-order backfill) restarts the replay from the
-- last flat point before it (the close of the last round trip before it that did not flip the
-- position), and everything after that point is recomputed. Either way the result equals a replay of all fills from the beginning.

CREATE TABLE trading.pnl_daily (
    bot_id        text NOT NULL,
    symbol        text NOT NULL,
    day           date NOT NULL,
    fill_rows     integer NOT NULL DEFAULT 0,
    trades        integer NOT NULL DEFAULT 0,
    volume        numeric NOT NULL DEFAULT 0,
    cash          numeric NOT NULL DEFAULT 0,
    fees          numeric NOT NULL DEFAULT 0,
    funding       numeric NOT NULL DEFAULT 0,
    open_cost_eod numeric NOT NULL DEFAULT 0,
    trips         integer NOT NULL DEFAULT 0,
    wins          integer NOT NULL DEFAULT 0,
    losses        integer NOT NULL DEFAULT 0,
    gross_win     numeric NOT NULL DEFAULT 0,
    gross_loss    numeric NOT NULL DEFAULT 0,
    holding_s     numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, symbol, day)
);
CREATE INDEX pnl_daily_day_idx ON trading.pnl_daily (day);

CREATE TABLE trading.pnl_state (
    bot_id        text NOT NULL,
    symbol        text NOT NULL,
    last_time     timestamptz,
    last_seq      bigint,
    last_exec_id  text,
    qty           numeric NOT NULL DEFAULT 0,
    open_cost     numeric NOT NULL DEFAULT 0,
    opened_at     timestamptz,
    direction     text,
    trip_cash     numeric NOT NULL DEFAULT 0,
    trip_fees     numeric NOT NULL DEFAULT 0,
    trip_funding  numeric NOT NULL DEFAULT 0,
    trip_trades   integer NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, symbol)
);

CREATE TABLE trading.round_trips (
    id            bigserial PRIMARY KEY,
    bot_id        text NOT NULL,
    symbol        text NOT NULL,
    direction     text NOT NULL CHECK (direction IN ('long', 'short')),
    opened_at     timestamptz NOT NULL,
    closed_at     timestamptz NOT NULL,
    close_seq     bigint NOT NULL,
    close_exec_id text NOT NULL,
    realised      numeric NOT NULL,
    fees          numeric NOT NULL,
    funding       numeric NOT NULL,
    net           numeric GENERATED ALWAYS AS (realised - fees - funding) STORED,
    trade_count   integer NOT NULL,
    left_open     boolean NOT NULL  -- the closing fill flipped the position: not flat after it
);
CREATE INDEX round_trips_pair_close_idx
    ON trading.round_trips (bot_id, symbol, closed_at, close_seq, close_exec_id COLLATE "C");
CREATE INDEX round_trips_closed_idx ON trading.round_trips (closed_at DESC);

CREATE FUNCTION trading.pnl_flush_day(p_bot text, p_symbol text, p_day date, p_open_cost numeric,
                                      p_trips integer, p_wins integer, p_losses integer,
                                      p_gross_win numeric, p_gross_loss numeric, p_holding numeric)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
    UPDATE trading.pnl_daily
       SET open_cost_eod = p_open_cost, trips = trips + p_trips, wins = wins + p_wins,
           losses = losses + p_losses, gross_win = gross_win + p_gross_win,
           gross_loss = gross_loss + p_gross_loss, holding_s = holding_s + p_holding
     WHERE bot_id = p_bot AND symbol = p_symbol AND day = p_day
$$;

-- Replays (bot, symbol) from the fill keyed (p_time, p_seq, p_exec) on: incrementally when that
-- key is after the last applied fill, otherwise from the last flat point before it.
CREATE FUNCTION trading.pnl_replay(p_bot text, p_symbol text, p_time timestamptz, p_seq bigint, p_exec text)
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
        SELECT exec_time, COALESCE(seq, 0) AS seq, exec_id, exec_type, side, exec_price, exec_qty, commission
          FROM trading.fills
         WHERE bot_id = p_bot AND symbol = p_symbol
           AND (k_time IS NULL
                OR (exec_time >= k_time
                    AND (exec_time, COALESCE(seq, 0), exec_id COLLATE "C") > (k_time, k_seq, k_exec COLLATE "C")))
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

-- Everything for one (bot, symbol) from scratch: the path for the rare UPDATE/DELETE of fills and
-- for fills that existed before this migration.
CREATE FUNCTION trading.pnl_rebuild_pair(p_bot text, p_symbol text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pnl:' || p_bot || ':' || p_symbol, 0));
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
      FROM trading.fills WHERE bot_id = p_bot AND symbol = p_symbol
     GROUP BY 1, 2, 3;
    IF FOUND THEN
        PERFORM trading.pnl_replay(p_bot, p_symbol, '-infinity'::timestamptz, 0, '');
    END IF;
END $$;

CREATE FUNCTION trading.pnl_on_fills_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
DECLARE
    p record;
BEGIN
    -- Per-pair locks first, in a fixed order, so concurrent writers serialise without deadlock.
    PERFORM pg_advisory_xact_lock(hashtextextended('pnl:' || bot_id || ':' || symbol, 0))
       FROM (SELECT DISTINCT bot_id, symbol FROM new_rows ORDER BY 1, 2) pairs;
    INSERT INTO trading.pnl_daily AS t (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding)
    SELECT bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date, count(*),
           count(*) FILTER (WHERE exec_type = 'Trade'),
           COALESCE(sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'), 0),
           COALESCE(sum(CASE WHEN side = 'Buy' THEN -exec_qty ELSE exec_qty END * exec_price) FILTER (
               WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
                 AND side IN ('Buy', 'Sell')), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type <> 'Funding'), 0),
           COALESCE(sum(commission) FILTER (WHERE exec_type = 'Funding'), 0)
      FROM new_rows
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (bot_id, symbol, day) DO UPDATE
       SET fill_rows = t.fill_rows + EXCLUDED.fill_rows, trades = t.trades + EXCLUDED.trades,
           volume = t.volume + EXCLUDED.volume, cash = t.cash + EXCLUDED.cash,
           fees = t.fees + EXCLUDED.fees, funding = t.funding + EXCLUDED.funding;
    FOR p IN
        SELECT DISTINCT ON (bot_id, symbol) bot_id, symbol, exec_time, COALESCE(seq, 0) AS seq, exec_id
          FROM new_rows
         ORDER BY bot_id, symbol, exec_time, COALESCE(seq, 0), exec_id COLLATE "C"
    LOOP
        PERFORM trading.pnl_replay(p.bot_id, p.symbol, p.exec_time, p.seq, p.exec_id);
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION trading.pnl_on_fills_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT DISTINCT x.bot_id, x.symbol
          FROM old_rows o JOIN new_rows n USING (id)
         CROSS JOIN LATERAL (VALUES (o.bot_id, o.symbol), (n.bot_id, n.symbol)) AS x(bot_id, symbol)
         WHERE (o.bot_id, o.symbol, o.exec_time, o.seq, o.exec_id, o.exec_type, o.side, o.exec_price,
                o.exec_qty, o.commission)
               IS DISTINCT FROM
               (n.bot_id, n.symbol, n.exec_time, n.seq, n.exec_id, n.exec_type, n.side, n.exec_price,
                n.exec_qty, n.commission)
         ORDER BY 1, 2
    LOOP
        PERFORM trading.pnl_rebuild_pair(p.bot_id, p.symbol);
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION trading.pnl_on_fills_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT DISTINCT bot_id, symbol FROM old_rows ORDER BY 1, 2 LOOP
        PERFORM trading.pnl_rebuild_pair(p.bot_id, p.symbol);
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION trading.pnl_on_fills_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    DELETE FROM trading.pnl_daily;
    DELETE FROM trading.round_trips;
    DELETE FROM trading.pnl_state;
    RETURN NULL;
END $$;

CREATE TRIGGER fills_pnl_insert AFTER INSERT ON trading.fills
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trading.pnl_on_fills_insert();
CREATE TRIGGER fills_pnl_update AFTER UPDATE ON trading.fills
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION trading.pnl_on_fills_update();
CREATE TRIGGER fills_pnl_delete AFTER DELETE ON trading.fills
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION trading.pnl_on_fills_delete();
CREATE TRIGGER fills_pnl_truncate AFTER TRUNCATE ON trading.fills
    FOR EACH STATEMENT EXECUTE FUNCTION trading.pnl_on_fills_truncate();

-- Fills written before this migration.
SELECT trading.pnl_rebuild_pair(bot_id, symbol)
  FROM (SELECT DISTINCT bot_id, symbol FROM trading.fills ORDER BY 1, 2) pairs;

REVOKE ALL ON FUNCTION trading.pnl_flush_day(text, text, date, numeric, integer, integer, integer, numeric, numeric, numeric),
    trading.pnl_replay(text, text, timestamptz, bigint, text), trading.pnl_rebuild_pair(text, text) FROM PUBLIC;
GRANT SELECT ON trading.pnl_daily, trading.pnl_state, trading.round_trips TO c2_user, reconciler_user, strategy_user;
