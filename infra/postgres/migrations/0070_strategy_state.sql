-- Strategy state that survives a restart: cooldowns, counters, guard references (day/week/month start
-- equity, peak), entry times, each trade's plan. One JSON value per (bot, key), written by the bot's
-- runtime (strategies/runtime/state_pg.py: a save is one transaction, an upsert of the changed keys).
--
-- Row-level security exactly as on trading.bots (0001): a strategy connection acts as the bot it names
-- in the transaction (SELECT set_config('trading.bot_id', <bot>, true)) and reads and writes that bot's
-- rows only; without the setting it sees and changes nothing. As on trading.bots this guards against a
-- bot touching another bot's state by mistake: every bot logs in as strategy_user, so it is not a wall
-- between bots that distrust each other. C2 and the reconciler read every bot's state (diagnostics,
-- reports); nobody else writes it.

CREATE TABLE trading.strategy_state (
    bot_id     text NOT NULL CHECK (bot_id ~ '^[a-z0-9_]{1,32}$'),
    key        text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, key)
);
COMMENT ON TABLE trading.strategy_state IS 'per-bot persistent strategy state (JSON per key); written by the bot as itself (RLS on trading.bot_id)';
COMMENT ON COLUMN trading.strategy_state.value IS 'JSON; decimals as strings, times as ISO 8601 UTC strings';

ALTER TABLE trading.strategy_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY strategy_state_own ON trading.strategy_state FOR ALL TO strategy_user
    USING (bot_id = current_setting('trading.bot_id', true))
    WITH CHECK (bot_id = current_setting('trading.bot_id', true));
CREATE POLICY strategy_state_read ON trading.strategy_state FOR SELECT TO c2_user, reconciler_user USING (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON trading.strategy_state TO strategy_user;
GRANT SELECT ON trading.strategy_state TO c2_user, reconciler_user;
