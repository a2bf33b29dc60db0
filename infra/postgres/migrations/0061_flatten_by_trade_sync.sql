-- trade_sync executes the flatten requests of /flatten and /killswitch (it holds the bots' keys)
-- and audits each one: a 'service' role in the audit log, and INSERT for reconciler_user.

ALTER TABLE trading.audit_log DROP CONSTRAINT audit_log_role_check;
ALTER TABLE trading.audit_log ADD CONSTRAINT audit_log_role_check
    CHECK (role IN ('admin', 'viewer', 'stranger', 'cli', 'service'));
COMMENT ON COLUMN trading.audit_log.result IS
    'ok | denied | rejected | error | confirm_requested | cancelled | expired | incomplete';

GRANT INSERT ON trading.audit_log TO reconciler_user;
GRANT USAGE ON SEQUENCE trading.audit_log_id_seq TO reconciler_user;
