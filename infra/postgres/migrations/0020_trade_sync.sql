-- trade_sync: the history of its runs (read by `status` and the Telegram bot) and backfill progress
-- (what a run killed midway has already completed, so the next run resumes after it).

CREATE TABLE trading.sync_runs (
    id                bigserial PRIMARY KEY,
    run_id            uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('sync', 'backfill')),
    trigger           text NOT NULL CHECK (trigger IN ('cli', 'schedule')),
    bot_id            text NOT NULL,
    symbol            text,
    months            integer CHECK (months > 0),
    job_id            uuid,
    range_start       timestamptz NOT NULL,
    range_end         timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    windows_total     integer NOT NULL DEFAULT 0,
    windows_done      integer NOT NULL DEFAULT 0,
    windows_resumed   integer NOT NULL DEFAULT 0,
    requests          integer NOT NULL DEFAULT 0,
    pages             integer NOT NULL DEFAULT 0,
    fetched           bigint NOT NULL DEFAULT 0,
    inserted          bigint NOT NULL DEFAULT 0,
    already_present   bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    missing_found     integer NOT NULL DEFAULT 0,
    recovered         integer NOT NULL DEFAULT 0,
    unknown_to_exchange integer NOT NULL DEFAULT 0,
    positions_checked integer NOT NULL DEFAULT 0,
    drift_found       integer NOT NULL DEFAULT 0,
    drift_repaired    integer NOT NULL DEFAULT 0,
    drift             jsonb NOT NULL DEFAULT '[]'::jsonb,
    error             text,
    UNIQUE (run_id, bot_id)
);
COMMENT ON TABLE trading.sync_runs IS 'One row per bot per trade_sync run (sync or backfill); written by reconciler_user';
COMMENT ON COLUMN trading.sync_runs.already_present IS 'rows the listener reported as duplicates (already in trading.fills)';
COMMENT ON COLUMN trading.sync_runs.missing_found IS 'sync: exchange executions absent from trading.fills';
COMMENT ON COLUMN trading.sync_runs.recovered IS 'sync: of those, rows the listener inserted';
CREATE INDEX sync_runs_bot_kind_started_idx ON trading.sync_runs (bot_id, kind, started_at DESC);
CREATE INDEX sync_runs_running_idx ON trading.sync_runs (bot_id) WHERE status = 'running';

CREATE TABLE trading.backfill_progress (
    job_id          uuid NOT NULL,
    bot_id          text NOT NULL,
    symbol          text NOT NULL DEFAULT '',   -- '' = every symbol
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,       -- exclusive
    run_id          uuid NOT NULL,
    pages           integer NOT NULL,
    fetched         integer NOT NULL,
    inserted        integer NOT NULL,
    already_present integer NOT NULL,
    completed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, window_start, window_end),
    CHECK (window_end > window_start)
);
COMMENT ON TABLE trading.backfill_progress IS 'Windows a backfill job has fully committed through the listener';
CREATE INDEX backfill_progress_bot_idx ON trading.backfill_progress (bot_id, symbol, completed_at DESC);

GRANT SELECT, INSERT, UPDATE ON trading.sync_runs, trading.backfill_progress TO reconciler_user;
GRANT DELETE ON trading.backfill_progress TO reconciler_user;
GRANT USAGE ON SEQUENCE trading.sync_runs_id_seq TO reconciler_user;
GRANT SELECT ON trading.sync_runs, trading.backfill_progress TO c2_user;
