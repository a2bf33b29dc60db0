-- Where the listener's restart catch-up starts, per bot (issue 12 item 4). Until now it started at the
-- newest stored fill minus an overlap, which misses older fills that were only in memory at a crash (a
-- catch-up's old rows behind newer committed ones). `resume_from` is the oldest exec time not known
-- committed: lowered (and committed) before a catch-up pass reads rows older than it, raised by the
-- listener every second to the oldest fill it still holds uncommitted (or, holding none, the newest it
-- committed). The restart catch-up reads from `resume_from` minus the overlap.
CREATE TABLE trading.listener_watermarks (
    bot_id      text PRIMARY KEY,
    resume_from timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trading.listener_watermarks IS
    'per bot: the oldest exec time the listener does not know committed; its restart catch-up starts there';
GRANT SELECT, INSERT, UPDATE ON trading.listener_watermarks TO listener_user;
