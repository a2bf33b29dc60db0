-- Telegram C2: the audit log of every command attempt (control commands and refused attempts),
-- and the state of each alert, so a restart neither repeats nor forgets an alert.

CREATE TABLE trading.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     bigint NOT NULL,
    username    text,
    role        text NOT NULL CHECK (role IN ('admin', 'viewer', 'stranger', 'cli')),
    command     text NOT NULL,
    args        text NOT NULL DEFAULT '',
    result      text NOT NULL,
    detail      text
);
COMMENT ON COLUMN trading.audit_log.result IS 'ok | denied | rejected | error | confirm_requested | cancelled | expired';
CREATE INDEX audit_log_at_idx ON trading.audit_log (at DESC);
CREATE INDEX audit_log_user_idx ON trading.audit_log (user_id, at DESC);

CREATE TABLE trading.alert_state (
    alert_key   text PRIMARY KEY,
    firing      boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    detail      text
);

GRANT SELECT, INSERT ON trading.audit_log TO c2_user;
GRANT USAGE ON SEQUENCE trading.audit_log_id_seq TO c2_user;
GRANT SELECT, INSERT, UPDATE ON trading.alert_state TO c2_user;
