-- PnL aggregates off the listener's write path.
--
-- Until now the insert trigger replayed the PnL books inside the listener's own transaction: about
-- 0.8 ms per statement and 30 us per fill on the single writer's critical path. Now the insert
-- trigger only queues, per (bot, symbol, UTC day) of the statement, the order-free sums of its fills
-- and the earliest of them (trading.pnl_pending: a few rows per statement, however many fills), and
-- trading.pnl_refresh() applies the queue with the method of migration 0031: the sums are added, then
-- one replay per (bot, symbol) from the earliest queued fill (from the pair's state when that fill is
-- later than everything applied, otherwise from the last flat point before it). Readers call
-- pnl_refresh() before they read; the listener also calls it every few seconds
-- (LISTENER_PNL_REFRESH_EVERY_S) so that a read rarely finds much to apply.
--
-- Sums and trips are kept apart: a fill's sums (trade count, volume, cash, fees, funding) are added
-- exactly once, by whoever takes its queue row; trips and open cost come from replays, which read
-- every committed fill (fills committed while a refresh runs included) and are redone from the last
-- flat point whenever an older fill is applied. So no interleaving of refreshes and inserts can
-- count a fill twice or miss one. The one visible effect of a race: a fill committed while a refresh
-- runs can show in its day's trips and open cost before its cash flow, until the next refresh takes
-- its queue row (a report refreshes first, so only a fill committed during that very refresh).
-- A rebuild (owner corrections) holds the pair's lock, which inserts of that pair share, so it sees
-- every fill of the pair together with its queue rows.

CREATE TABLE trading.pnl_pending (
    bot_id        text NOT NULL,
    symbol        text NOT NULL,
    day           date NOT NULL,
    fill_rows     integer NOT NULL,
    trades        integer NOT NULL,
    volume        numeric NOT NULL,
    cash          numeric NOT NULL,
    fees          numeric NOT NULL,
    funding       numeric NOT NULL,
    first_time    timestamptz NOT NULL,
    first_seq     bigint NOT NULL,
    first_exec_id text NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
COMMENT ON TABLE trading.pnl_pending IS 'fills not yet applied to the PnL aggregates, summed per insert statement and (bot, symbol, day); drained by trading.pnl_refresh()';

-- The refresh lock: one refresher at a time, and rebuilds never interleave with it.
CREATE FUNCTION trading.pnl_lock() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('pnl:refresh', 0))
$$;

CREATE OR REPLACE FUNCTION trading.pnl_on_fills_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    -- Shared with other inserts, exclusive for a rebuild of the pair (see pnl_rebuild_pair).
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('pnl:' || bot_id || ':' || symbol, 0))
       FROM (SELECT DISTINCT bot_id, symbol FROM new_rows ORDER BY 1, 2) pairs;
    INSERT INTO trading.pnl_pending (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding,
                                     first_time, first_seq, first_exec_id)
    SELECT s.bot_id, s.symbol, s.day, s.fill_rows, s.trades, s.volume, s.cash, s.fees, s.funding,
           f.exec_time, f.seq, f.exec_id
      FROM (SELECT bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date AS day,
                   count(*),
                   count(*) FILTER (WHERE exec_type = 'Trade'),
                   COALESCE(sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'), 0),
                   COALESCE(sum(CASE WHEN side = 'Buy' THEN -exec_qty ELSE exec_qty END * exec_price) FILTER (
                       WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
                         AND side IN ('Buy', 'Sell')), 0),
                   COALESCE(sum(commission) FILTER (WHERE exec_type <> 'Funding'), 0),
                   COALESCE(sum(commission) FILTER (WHERE exec_type = 'Funding'), 0)
              FROM new_rows GROUP BY 1, 2, 3) AS s(bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding)
      JOIN (SELECT DISTINCT ON (bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date)
                   bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date AS day, exec_time, COALESCE(seq, 0) AS seq, exec_id
              FROM new_rows
             ORDER BY bot_id, symbol, (exec_time AT TIME ZONE 'UTC')::date, exec_time, COALESCE(seq, 0),
                      exec_id COLLATE "C") AS f
     USING (bot_id, symbol, day);
    RETURN NULL;
END $$;

-- A day's trips and closing open cost, written by a replay: an upsert, because a replay can reach
-- a fill whose own queue row another refresh has yet to take (it was committed after this refresh
-- took its queue), so that day may have no row yet; its sums arrive when its queue row is taken.
CREATE OR REPLACE FUNCTION trading.pnl_flush_day(p_bot text, p_symbol text, p_day date, p_open_cost numeric,
                                                 p_trips integer, p_wins integer, p_losses integer,
                                                 p_gross_win numeric, p_gross_loss numeric, p_holding numeric)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
    INSERT INTO trading.pnl_daily AS t (bot_id, symbol, day, open_cost_eod, trips, wins, losses, gross_win,
                                        gross_loss, holding_s)
    VALUES (p_bot, p_symbol, p_day, p_open_cost, p_trips, p_wins, p_losses, p_gross_win, p_gross_loss, p_holding)
    ON CONFLICT (bot_id, symbol, day) DO UPDATE
       SET open_cost_eod = p_open_cost, trips = t.trips + p_trips, wins = t.wins + p_wins,
           losses = t.losses + p_losses, gross_win = t.gross_win + p_gross_win,
           gross_loss = t.gross_loss + p_gross_loss, holding_s = t.holding_s + p_holding
$$;

-- A replay's reads depend on where it starts (from the pair's state: a few rows; from the beginning:
-- all of them), so a plan cached for one start is wrong for the other: planned afresh every time.
ALTER FUNCTION trading.pnl_replay(text, text, timestamptz, bigint, text) SET plan_cache_mode = force_custom_plan;

-- Applies every queued fill; returns how many fills it applied. Safe to call at any time, by
-- several sessions at once (they take turns). One statement takes the queue, adds its sums and
-- finds where each (bot, symbol) must be replayed from; then one replay per pair.
CREATE FUNCTION trading.pnl_refresh() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
DECLARE
    n integer;
    bots text[]; symbols text[]; times timestamptz[]; seqs bigint[]; execs text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM trading.pnl_pending) THEN
        RETURN 0;
    END IF;
    PERFORM trading.pnl_lock();
    WITH taken AS (
        DELETE FROM trading.pnl_pending RETURNING *
    ), sums AS (
        INSERT INTO trading.pnl_daily AS t (bot_id, symbol, day, fill_rows, trades, volume, cash, fees, funding)
        SELECT bot_id, symbol, day, sum(fill_rows), sum(trades), sum(volume), sum(cash), sum(fees), sum(funding)
          FROM taken
         GROUP BY 1, 2, 3
         ORDER BY 1, 2, 3
        ON CONFLICT (bot_id, symbol, day) DO UPDATE
           SET fill_rows = t.fill_rows + EXCLUDED.fill_rows, trades = t.trades + EXCLUDED.trades,
               volume = t.volume + EXCLUDED.volume, cash = t.cash + EXCLUDED.cash,
               fees = t.fees + EXCLUDED.fees, funding = t.funding + EXCLUDED.funding
    ), firsts AS (
        SELECT DISTINCT ON (bot_id, symbol) bot_id, symbol, first_time, first_seq, first_exec_id
          FROM taken
         ORDER BY bot_id, symbol, first_time, first_seq, first_exec_id COLLATE "C"
    )
    SELECT (SELECT COALESCE(sum(fill_rows), 0) FROM taken), array_agg(bot_id), array_agg(symbol),
           array_agg(first_time), array_agg(first_seq), array_agg(first_exec_id)
      INTO n, bots, symbols, times, seqs, execs
      FROM firsts;
    FOR i IN 1 .. COALESCE(cardinality(bots), 0) LOOP
        PERFORM trading.pnl_replay(bots[i], symbols[i], times[i], seqs[i], execs[i]);
    END LOOP;
    RETURN n;
END $$;

-- A pair rebuilt from scratch (owner corrections: UPDATE or DELETE of fills) counts every fill it
-- holds now and drops the pair's queue rows. Its exclusive pair lock waits for the inserts of the
-- pair in flight and holds new ones until it commits: no fill can be counted by both.
CREATE OR REPLACE FUNCTION trading.pnl_rebuild_pair(p_bot text, p_symbol text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, trading AS $$
BEGIN
    PERFORM trading.pnl_lock();  -- first, as in every path that takes it: no lock-order cycles
    PERFORM pg_advisory_xact_lock(hashtextextended('pnl:' || p_bot || ':' || p_symbol, 0));
    DELETE FROM trading.pnl_pending WHERE bot_id = p_bot AND symbol = p_symbol;
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
