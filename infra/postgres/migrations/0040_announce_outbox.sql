-- Announce at least once (issue 12 item 5). A batch's ingest receipt (0035), written in the same
-- transaction as its fills, is now also its announcement outbox: the listener deletes it only after the
-- batch's fills are on `fills_channel` and on the bots' fill feeds, and on start announces whatever
-- receipts are left (a SIGKILL, an outage or a crash between commit and publish). So a receipt is no
-- longer pruned by age: an old one is a batch whose announcement has not been confirmed.
--
-- Receipts are still read by a retry of their own batch after a lost commit answer; a receipt is deleted
-- only after its batch was announced, which is after its last write attempt, so that use is unaffected.

DROP FUNCTION trading.prune_ingest_receipts(interval);

-- Confirmed announcements: their receipts go.
CREATE FUNCTION trading.outbox_drain(p_batches uuid[]) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, trading AS $$
    WITH gone AS (DELETE FROM trading.ingest_receipts WHERE batch_id = ANY (p_batches) RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;

REVOKE ALL ON FUNCTION trading.outbox_drain(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trading.outbox_drain(uuid[]) TO listener_user;
COMMENT ON TABLE trading.ingest_receipts IS
    'per listener fills batch: the exec_ids it inserted; its announcement outbox, deleted once announced';
