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

CREATE VIEW trading.completed_trades AS
WITH moves AS (
    SELECT bot_id, symbol, exec_time, seq, exec_id, exec_price, close_reason, ord,
           pos - q AS pos_before, pos AS pos_after
      FROM (SELECT bot_id, symbol, exec_time, COALESCE(seq, 0) AS seq, exec_id, exec_price, close_reason,
                   CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END AS q,
                   sum(CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END) OVER w AS pos,
                   row_number() OVER w AS ord
              FROM trading.fills
             WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
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
SELECT t.id AS trade_id, t.bot_id, t.symbol,
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
              AND a.close_seq = t.close_seq AND a.close_exec_id = t.close_exec_id;

COMMENT ON VIEW trading.completed_trades IS 'closed round trips with average entry/exit, reasons (from the orders'' tags) and net PnL; see migration 0060';
GRANT SELECT ON trading.completed_trades TO c2_user;
