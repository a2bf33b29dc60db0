-- PnL aggregates off the listener's write path.
--
-- Until now the insert trigger replayed the PnL books inside the listener's own transaction: about
-- 0.8 ms per statement and 30 us per fill on the single writer's critical path. Now the insert
-- trigger only queues the new fill ids in trading.pnl_pending (one heap row each, no index), and
-- trading.pnl_refresh() applies the queue with exactly the method of migration 0031: order-free sums
-- added once per queued fill, then one replay per (bot, symbol) from the earliest queued fill (from
-- the pair's state when it is later than everything applied, otherwise from the last flat point
-- before it). Readers call pnl_refresh() before they read, so reports stay exact; the C2 service
-- also calls it on a timer so that a read rarely finds much to apply.
--
-- A replay may see fills committed after the queue was taken (each statement reads the newest
-- commits): they are replayed early and replayed again when their own queue rows are applied,
-- which a replay allows (it is a function of the fills, not of the order they arrive in); their
-- sums are added once, with their queue rows.

CREATE TABLE trading.pnl_pending (
    fill_id   bigint NOT NULL
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
-- queue (the refresh lock keeps a refresher from taking them at the same time).
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
      FROM trading.fills WHERE bot_id = p_bot AND symbol = p_symbol
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
