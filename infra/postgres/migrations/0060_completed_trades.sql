-- trading.completed_trades: one row per closed round trip, with the column names operators' existing
-- queries use. A view over trading.round_trips (migrations 0031/0032: times, PnL, fees, funding)
-- and trading.fills (average entry and exit prices and quantities, entry and exit reasons); it adds
-- nothing to the PnL functions.
--
-- Each fill that moves a position is split into the quantity it closes and the quantity it opens,
-- from the position before and after it (a running sum in the replay's order: exec_time, seq,
-- exec_id). A fill that brings the position to zero or across it ends a trip: a fill's closing part
-- belongs to the trip it ends (or the one open), its opening part to the next. Each trip is matched
-- to its round_trips row by its closing fill (round_trips' close key), so an equi-join.
-- Reasons are the fills' close_reason, which the listener derives from the order's
-- orderLinkId tag "{bot_id}-{reason}-{unique}" (venue events such as liquidation first).
-- Like every PnL figure, round_trips catches up with new fills at trading.pnl_refresh() (the
-- listener runs it every LISTENER_PNL_REFRESH_EVERY_S; /trades runs it before it reads).
-- trading.completed_trades_newest(bot, n) holds the one definition: the newest n trips (of one bot
-- or all) from the fills since each pair's last flat point before them (300k fills: 0.2-0.4 s);
-- the view is that function with no limit (every fill read: 300k fills, about 8 s).

CREATE FUNCTION trading.completed_trades_newest(p_bot text, p_limit integer)
RETURNS TABLE (trade_id bigint, bot_id text, symbol text, entry_side text, entry_price numeric, entry_qty numeric,
               entry_time timestamptz, entry_reason text, exit_price numeric, exit_qty numeric,
               exit_time timestamptz, exit_reason text, gross_pnl numeric, net_pnl numeric, pnl_pct numeric,
               total_commission numeric, total_funding numeric, holding_duration_seconds numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, trading AS $$
WITH shown AS (  -- the newest p_limit trips (all of them when p_limit is NULL)
    SELECT t.bot_id, t.symbol, t.closed_at, t.close_seq, t.close_exec_id
      FROM trading.round_trips t
     WHERE p_bot IS NULL OR t.bot_id = p_bot
     ORDER BY t.closed_at DESC, t.id DESC
     LIMIT p_limit
), oldest AS (
    SELECT DISTINCT ON (bot_id, symbol) bot_id, symbol, closed_at, close_seq, close_exec_id
      FROM shown ORDER BY bot_id, symbol, closed_at, close_seq, close_exec_id COLLATE "C"
), starts AS (  -- per pair, the last flat point before its oldest shown trip: the fills after it suffice
    SELECT o.bot_id, o.symbol,
           COALESCE(f.closed_at, '-infinity') AS s_time, COALESCE(f.close_seq, -1) AS s_seq,
           COALESCE(f.close_exec_id, '') AS s_exec
      FROM oldest o
      LEFT JOIN LATERAL (
          SELECT r.closed_at, r.close_seq, r.close_exec_id FROM trading.round_trips r
           WHERE r.bot_id = o.bot_id AND r.symbol = o.symbol AND NOT r.left_open
             AND (r.closed_at, r.close_seq, r.close_exec_id COLLATE "C")
                 < (o.closed_at, o.close_seq, o.close_exec_id COLLATE "C")
           ORDER BY r.closed_at DESC, r.close_seq DESC, r.close_exec_id COLLATE "C" DESC LIMIT 1) f ON true
), moves AS (
    SELECT bot_id, symbol, exec_time, seq, exec_id, exec_price, close_reason, ord,
           pos - q AS pos_before, pos AS pos_after
      FROM (SELECT bot_id, symbol, exec_time, COALESCE(seq, 0) AS seq, exec_id, exec_price, close_reason,
                   CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END AS q,
                   sum(CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END) OVER w AS pos,
                   row_number() OVER w AS ord
              FROM trading.fills JOIN starts USING (bot_id, symbol)
             WHERE exec_time >= s_time
               AND (exec_time, COALESCE(seq, 0), exec_id COLLATE "C") > (s_time, s_seq, s_exec COLLATE "C")
               AND exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
               AND side IN ('Buy', 'Sell') AND exec_qty <> 0
            WINDOW w AS (PARTITION BY bot_id, symbol ORDER BY exec_time, COALESCE(seq, 0), exec_id COLLATE "C"
                         ROWS UNBOUNDED PRECEDING)) f
), parts AS (
    SELECT x.*,
           CASE WHEN crosses THEN abs(pos_after)
                WHEN abs(pos_after) > abs(pos_before) THEN abs(pos_after) - abs(pos_before) ELSE 0 END AS open_qty,
           CASE WHEN crosses THEN abs(pos_before)
                WHEN abs(pos_after) < abs(pos_before) THEN abs(pos_before) - abs(pos_after) ELSE 0 END AS close_qty,
           count(*) FILTER (WHERE ends) OVER (PARTITION BY bot_id, symbol ORDER BY ord ROWS UNBOUNDED PRECEDING) AS k
      FROM (SELECT m.*, sign(pos_before) * sign(pos_after) < 0 AS crosses,
                   (pos_before <> 0 AND (pos_after = 0 OR sign(pos_before) * sign(pos_after) < 0)) AS ends
              FROM moves m) x
), legs AS (  -- a fill's opening part goes to the next trip, its closing part to the trip it ends (or the open one)
    SELECT p.bot_id, p.symbol, p.exec_time, p.seq, p.exec_id, p.exec_price, p.close_reason, p.ord,
           l.trip_no, l.open_qty, l.close_qty, l.is_end
      FROM parts p
      CROSS JOIN LATERAL (VALUES (p.k + 1, p.open_qty, 0::numeric, false),
                                 (CASE WHEN p.ends THEN p.k ELSE p.k + 1 END, 0::numeric, p.close_qty, p.ends))
                         AS l(trip_no, open_qty, close_qty, is_end)
     WHERE l.open_qty > 0 OR l.close_qty > 0
), trips AS (
    SELECT bot_id, symbol,
           sum(open_qty) AS entry_qty, sum(open_qty * exec_price) AS entry_notional,
           (array_agg(close_reason ORDER BY ord) FILTER (WHERE open_qty > 0))[1] AS entry_reason,
           sum(close_qty) AS exit_qty, sum(close_qty * exec_price) AS exit_notional,
           (array_agg(close_reason ORDER BY ord DESC) FILTER (WHERE close_qty > 0))[1] AS exit_reason,
           (array_agg(exec_time) FILTER (WHERE is_end))[1] AS close_time,
           (array_agg(seq) FILTER (WHERE is_end))[1] AS close_seq,
           (array_agg(exec_id) FILTER (WHERE is_end))[1] AS close_exec_id
      FROM legs
     GROUP BY bot_id, symbol, trip_no
)
SELECT t.id, t.bot_id, t.symbol,
       CASE t.direction WHEN 'long' THEN 'Buy' ELSE 'Sell' END AS entry_side,
       round(a.entry_notional / a.entry_qty, 10) AS entry_price, a.entry_qty, t.opened_at AS entry_time,
       a.entry_reason,
       round(a.exit_notional / a.exit_qty, 10) AS exit_price, a.exit_qty, t.closed_at AS exit_time,
       a.exit_reason,
       t.realised AS gross_pnl, t.net AS net_pnl,
       round(t.net / NULLIF(a.entry_notional, 0) * 100, 4) AS pnl_pct,
       t.fees AS total_commission, t.funding AS total_funding,
       EXTRACT(EPOCH FROM t.closed_at - t.opened_at) AS holding_duration_seconds
  FROM trading.round_trips t
  JOIN trips a ON a.bot_id = t.bot_id AND a.symbol = t.symbol AND a.close_time = t.closed_at
              AND a.close_seq = t.close_seq AND a.close_exec_id = t.close_exec_id
$$;


-- The view: every trip. /trades asks the function for the newest n only, which reads just the fills
-- since each pair's last flat point before them.
CREATE VIEW trading.completed_trades AS
SELECT * FROM trading.completed_trades_newest(NULL, NULL);

COMMENT ON VIEW trading.completed_trades IS 'closed round trips with average entry/exit, reasons (from the orders'' tags) and net PnL; see migration 0060';
REVOKE ALL ON FUNCTION trading.completed_trades_newest(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.completed_trades_newest(text, integer) TO c2_user;
GRANT SELECT ON trading.completed_trades TO c2_user;
