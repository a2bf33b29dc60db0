-- trading.completed_trades: one row per closed round trip, with the column names operators' existing
-- queries use. A view over trading.round_trips (migrations 0031/0032: times, PnL, fees, funding)
-- and trading.fills (average entry and exit prices and quantities, entry and exit reasons); it adds
-- nothing to the PnL functions.
--
-- Each fill that moves a position is split into the quantity it closes and the quantity it opens,
-- from the position before and after it (a running sum in the replay's order: exec_time, seq,
-- exec_id). A fill that brings the position to zero or across it ends a trip, so the k-th such fill
-- of a (bot, symbol) ends its k-th round trip, the k-th row of round_trips in close order; a fill's
-- closing part belongs to the trip it ends (or the one open), its opening part to the next.
-- Reasons are the fills' close_reason, which the listener derives from the order's
-- orderLinkId tag "{bot_id}-{reason}-{unique}" (venue events such as liquidation first).
-- Like every PnL figure, round_trips catches up with new fills at trading.pnl_refresh() (the
-- listener runs it every LISTENER_PNL_REFRESH_EVERY_S; /trades runs it before it reads).

CREATE VIEW trading.completed_trades AS
WITH moves AS (
    SELECT bot_id, symbol, exec_price, close_reason, ord,
           pos - q AS pos_before, pos AS pos_after
      FROM (SELECT bot_id, symbol, exec_price, close_reason,
                   CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END AS q,
                   sum(CASE WHEN side = 'Buy' THEN exec_qty ELSE -exec_qty END) OVER w AS pos,
                   row_number() OVER w AS ord
              FROM trading.fills
             WHERE exec_type IN ('Trade', 'AdlTrade', 'BustTrade', 'Delivery', 'BlockTrade', 'MovePosition', 'FutureSpread')
               AND side IN ('Buy', 'Sell') AND exec_qty <> 0
            WINDOW w AS (PARTITION BY bot_id, symbol ORDER BY exec_time, COALESCE(seq, 0), exec_id COLLATE "C"
                         ROWS UNBOUNDED PRECEDING)) f
), parts AS (
    SELECT bot_id, symbol, exec_price, close_reason, ends, ord,
           CASE WHEN crosses THEN abs(pos_after)
                WHEN abs(pos_after) > abs(pos_before) THEN abs(pos_after) - abs(pos_before) ELSE 0 END AS open_qty,
           CASE WHEN crosses THEN abs(pos_before)
                WHEN abs(pos_after) < abs(pos_before) THEN abs(pos_before) - abs(pos_after) ELSE 0 END AS close_qty,
           count(*) FILTER (WHERE ends) OVER (PARTITION BY bot_id, symbol ORDER BY ord ROWS UNBOUNDED PRECEDING) AS k
      FROM (SELECT m.*, sign(pos_before) * sign(pos_after) < 0 AS crosses,
                   (pos_before <> 0 AND (pos_after = 0 OR sign(pos_before) * sign(pos_after) < 0)) AS ends
              FROM moves m) x
), entries AS (
    SELECT bot_id, symbol, k + 1 AS trip_no, sum(open_qty) AS qty, sum(open_qty * exec_price) AS notional,
           (array_agg(close_reason ORDER BY ord))[1] AS reason
      FROM parts WHERE open_qty > 0 GROUP BY 1, 2, 3
), exits AS (
    SELECT bot_id, symbol, CASE WHEN ends THEN k ELSE k + 1 END AS trip_no, sum(close_qty) AS qty,
           sum(close_qty * exec_price) AS notional, (array_agg(close_reason ORDER BY ord DESC))[1] AS reason
      FROM parts WHERE close_qty > 0 GROUP BY 1, 2, 3
), trips AS (
    SELECT t.*, row_number() OVER (PARTITION BY bot_id, symbol
                                   ORDER BY closed_at, close_seq, close_exec_id COLLATE "C") AS trip_no
      FROM trading.round_trips t
)
SELECT t.id AS trade_id, t.bot_id, t.symbol,
       CASE t.direction WHEN 'long' THEN 'Buy' ELSE 'Sell' END AS entry_side,
       round(e.notional / e.qty, 10) AS entry_price, e.qty AS entry_qty, t.opened_at AS entry_time,
       e.reason AS entry_reason,
       round(x.notional / x.qty, 10) AS exit_price, x.qty AS exit_qty, t.closed_at AS exit_time,
       x.reason AS exit_reason,
       t.realised AS gross_pnl, t.net AS net_pnl,
       round(t.net / NULLIF(e.notional, 0) * 100, 4) AS pnl_pct,
       t.fees AS total_commission, t.funding AS total_funding,
       EXTRACT(EPOCH FROM t.closed_at - t.opened_at) AS holding_duration_seconds
  FROM trips t
  LEFT JOIN entries e USING (bot_id, symbol, trip_no)
  LEFT JOIN exits x USING (bot_id, symbol, trip_no);

COMMENT ON VIEW trading.completed_trades IS 'closed round trips with average entry/exit, reasons (from the orders'' tags) and net PnL; see migration 0060';
GRANT SELECT ON trading.completed_trades TO c2_user, reconciler_user, strategy_user;
