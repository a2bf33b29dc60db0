-- What the WebSocket listener writes besides fills: orders (status lifecycle), throttled wallet
-- snapshots, and dead letters (frames it could not use, kept raw for an operator).

-- Order statuses ranked along their lifecycle, so a late or replayed push never moves an order back.
CREATE FUNCTION trading.order_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status
        WHEN 'Created' THEN 0 WHEN 'Untriggered' THEN 0 WHEN 'New' THEN 1 WHEN 'Triggered' THEN 1
        WHEN 'PartiallyFilled' THEN 2
        WHEN 'Filled' THEN 3 WHEN 'Cancelled' THEN 3 WHEN 'Rejected' THEN 3
        WHEN 'PartiallyFilledCanceled' THEN 3 WHEN 'Deactivated' THEN 3
        ELSE 1 END
$$;

CREATE TABLE trading.orders (
    order_id        text PRIMARY KEY,
    bot_id          text NOT NULL,
    symbol          text NOT NULL,
    category        text NOT NULL DEFAULT 'linear',
    client_order_id text,
    side            text NOT NULL,
    order_type      text NOT NULL,
    status          text NOT NULL,
    price           numeric,
    qty             numeric NOT NULL,
    avg_price       numeric,
    leaves_qty      numeric,
    cum_exec_qty    numeric NOT NULL,
    cum_exec_value  numeric,
    cum_exec_fee    numeric,
    reduce_only     boolean,
    time_in_force   text,
    stop_order_type text,
    trigger_price   numeric,
    take_profit     numeric,
    stop_loss       numeric,
    cancel_type     text,
    reject_reason   text,
    created_time    timestamptz NOT NULL,
    updated_time    timestamptz NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_bot_created_idx ON trading.orders (bot_id, created_time DESC);
CREATE INDEX orders_client_order_idx ON trading.orders (client_order_id);
CREATE INDEX orders_open_idx ON trading.orders (bot_id, symbol) WHERE trading.order_status_rank(status) < 3;

-- Every distinct state an order was seen in: the lifecycle, queryable after the fact.
CREATE TABLE trading.order_events (
    id              bigserial PRIMARY KEY,
    order_id        text NOT NULL,
    bot_id          text NOT NULL,
    status          text NOT NULL,
    cum_exec_qty    numeric NOT NULL,
    leaves_qty      numeric,
    updated_time    timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, status, cum_exec_qty, updated_time)
);
CREATE INDEX order_events_order_idx ON trading.order_events (order_id, updated_time);

CREATE TABLE trading.wallet_snapshots (
    id                       bigserial PRIMARY KEY,
    bot_id                   text NOT NULL,
    snapshot_time            timestamptz NOT NULL,
    account_type             text,
    total_equity             numeric,
    total_wallet_balance     numeric,
    total_margin_balance     numeric,
    total_available_balance  numeric,
    total_perp_upl           numeric,
    total_initial_margin     numeric,
    total_maintenance_margin numeric,
    coins                    jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_snapshots_bot_time_idx ON trading.wallet_snapshots (bot_id, snapshot_time DESC);

-- One row per distinct bad payload; repeats only bump the counter and last_seen.
CREATE TABLE trading.dead_letters (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    bot_id       text,
    reason       text NOT NULL,
    raw          text NOT NULL,
    raw_sha256   text NOT NULL UNIQUE,
    occurrences  integer NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_last_seen_idx ON trading.dead_letters (last_seen DESC);
COMMENT ON TABLE trading.dead_letters IS 'Frames/rows the listener could not use; raw kept verbatim (secrets never included)';

GRANT SELECT, INSERT, UPDATE ON trading.orders, trading.order_events, trading.wallet_snapshots,
    trading.dead_letters TO listener_user;
GRANT USAGE ON SEQUENCE trading.order_events_id_seq, trading.wallet_snapshots_id_seq,
    trading.dead_letters_id_seq TO listener_user;
GRANT SELECT ON trading.orders, trading.order_events, trading.wallet_snapshots, trading.dead_letters
    TO strategy_user, reconciler_user, c2_user;
GRANT EXECUTE ON FUNCTION trading.order_status_rank(text) TO listener_user, strategy_user, reconciler_user, c2_user;
