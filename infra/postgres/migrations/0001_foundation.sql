-- Schema `trading`, the fill ledger, the bot registry and least-privilege roles.

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['listener_user', 'strategy_user', 'reconciler_user', 'c2_user'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

CREATE SCHEMA IF NOT EXISTS trading;
REVOKE ALL ON SCHEMA trading FROM PUBLIC;
GRANT USAGE ON SCHEMA trading TO listener_user, strategy_user, reconciler_user, c2_user;

CREATE TABLE trading.bots (
    bot_id          text PRIMARY KEY CHECK (bot_id ~ '^[a-z0-9_]{1,32}$'),
    bot_name        text NOT NULL,
    bot_type        text NOT NULL DEFAULT 'strategy',
    strategy_name   text NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'stopped')),
    redis_db        integer NOT NULL CHECK (redis_db BETWEEN 0 AND 15),
    max_drawdown_pct numeric CHECK (max_drawdown_pct > 0),
    last_heartbeat  timestamptz,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trading.fills (
    id              bigserial PRIMARY KEY,
    bot_id          text NOT NULL,
    symbol          text NOT NULL,
    category        text NOT NULL DEFAULT 'linear',
    exec_id         text NOT NULL UNIQUE,
    order_id        text NOT NULL,
    client_order_id text,
    side            text NOT NULL CHECK (side IN ('Buy', 'Sell', '')),
    exec_type       text NOT NULL,
    exec_price      numeric NOT NULL,
    exec_qty        numeric NOT NULL,
    exec_value      numeric NOT NULL,
    exec_time       timestamptz NOT NULL,
    commission      numeric NOT NULL,
    fee_rate        numeric,
    fee_currency    text,
    is_maker        boolean,
    closed_size     numeric,
    exec_pnl        numeric,
    order_type      text,
    order_price     numeric,
    order_qty       numeric,
    leaves_qty      numeric,
    mark_price      numeric,
    stop_order_type text,
    seq             bigint,
    close_reason    text,
    source          text NOT NULL CHECK (source IN ('ws', 'sync')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN trading.fills.exec_type IS 'Bybit execType; only Trade rows are trades';
COMMENT ON COLUMN trading.fills.commission IS 'Bybit execFee: positive is paid, negative is received';

CREATE INDEX fills_exec_time_idx ON trading.fills (exec_time DESC);
CREATE INDEX fills_bot_time_idx ON trading.fills (bot_id, exec_time DESC);
CREATE INDEX fills_symbol_time_idx ON trading.fills (symbol, exec_time DESC);
CREATE INDEX fills_bot_symbol_time_idx ON trading.fills (bot_id, symbol, exec_time);
CREATE INDEX fills_order_idx ON trading.fills (order_id);

-- Reads for everyone who needs them; fills are written by the listener alone.
GRANT SELECT ON trading.fills TO listener_user, strategy_user, reconciler_user, c2_user;
GRANT INSERT, UPDATE ON trading.fills TO listener_user;
GRANT USAGE ON SEQUENCE trading.fills_id_seq TO listener_user;

GRANT SELECT ON trading.bots TO listener_user, strategy_user, reconciler_user, c2_user;
GRANT INSERT (bot_id, bot_name, bot_type, strategy_name, redis_db, metadata, last_heartbeat, updated_at),
      UPDATE (bot_name, bot_type, strategy_name, redis_db, metadata, last_heartbeat, updated_at)
      ON trading.bots TO strategy_user;
GRANT UPDATE (status, max_drawdown_pct, updated_at) ON trading.bots TO c2_user;

-- A strategy may register and beat only as the bot it says it is in the transaction
-- (SET LOCAL trading.bot_id): a guard against a bot touching another bot's row by mistake.
ALTER TABLE trading.bots ENABLE ROW LEVEL SECURITY;
CREATE POLICY bots_read ON trading.bots FOR SELECT USING (true);
CREATE POLICY bots_strategy_insert ON trading.bots FOR INSERT TO strategy_user
    WITH CHECK (bot_id = current_setting('trading.bot_id', true));
CREATE POLICY bots_strategy_update ON trading.bots FOR UPDATE TO strategy_user
    USING (bot_id = current_setting('trading.bot_id', true))
    WITH CHECK (bot_id = current_setting('trading.bot_id', true));
CREATE POLICY bots_c2_update ON trading.bots FOR UPDATE TO c2_user USING (true) WITH CHECK (true);
