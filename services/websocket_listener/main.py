"""Wiring: settings -> pool, Redis, REST clients -> streams, catch-ups, stream consumer, writer; then run.

    python -m services.websocket_listener.main          # run the listener
    python -m services.websocket_listener.main health   # the compose health check
"""
from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
import uvloop
from redis.asyncio import Redis

from shared.bots import BOTS, PLATFORM_REDIS_DB
from shared.bybit.rest_client import BybitRestClient
from shared.db.pool import open_pool
from shared.log import configure_logging
from shared.redis_client import redis_for
from shared.settings import (
    BotKeysSettings, ConfigError, DatabaseSettings, RedisSettings, VenueSettings, build_settings, fail_config,
)
from services.websocket_listener import health
from services.websocket_listener.catchup import CatchUp
from services.websocket_listener.config import SERVICE, ListenerSettings
from services.websocket_listener.counters import Counters
from services.websocket_listener.dispatch import Dispatcher, Source, WalletThrottle
from services.websocket_listener.ingest import Ingestor
from services.websocket_listener.pnl_refresh import refresh_forever
from services.websocket_listener.recovered import RecoveredConsumer
from services.websocket_listener.streams import PRIVATE_TOPICS, Stream, StreamTiming, public_topics
from services.websocket_listener.watermark import Watermarks

log = structlog.get_logger()


def _timing(cfg: ListenerSettings) -> StreamTiming:
    return StreamTiming(ping_interval_s=cfg.ping_interval_s, dead_after_s=cfg.dead_after_s,
                        handshake_timeout_s=cfg.handshake_timeout_s, backoff_min_s=cfg.backoff_min_s,
                        backoff_max_s=cfg.backoff_max_s, auth_backoff_min_s=cfg.auth_backoff_min_s)


async def _heartbeats(streams: list[Stream], dispatcher: Dispatcher, counters: Counters, ingest: Ingestor,
                      platform: Redis, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now_m = time.monotonic()
        states = {s.source.conn_name: {"up": s.state.up, "since": s.state.up_since, "error": s.state.last_error,
                                       "last_rx_age_s": round(now_m - s.state.last_rx_monotonic, 1),
                                       "queue": ingest.pending()} for s in streams}
        try:
            await dispatcher.flush_wallets()
            await health.write_beats(platform, states, {s.source.conn_name: s.healthy(now_m) for s in streams},
                                     counters, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the service
            log.warning("heartbeat_failed", error=type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            pass


async def run() -> int:
    try:
        cfg = build_settings(ListenerSettings)
        db = build_settings(DatabaseSettings)
        rs = build_settings(RedisSettings)
        venue = build_settings(VenueSettings)
        keys = build_settings(BotKeysSettings)
        bots = health.select_bots(cfg, keys)
        db.password("listener")
    except ConfigError as exc:
        fail_config(exc)
    configure_logging(SERVICE)
    log.info("listener_starting", bots=bots, venue=venue.venue, symbols=list(cfg.symbols))

    # No checkout test: every statement the listener runs is retried on OperationalError, so a connection
    # that died with a restart costs one retry, not a round trip before every batch.
    pool = await open_pool(db, "listener", min_size=3, max_size=6, autocommit=True, check=False)
    # Every registered bot's db: the recovered stream may carry any of them, not only those streamed here.
    dbs = {PLATFORM_REDIS_DB, *(spec.redis_db for spec in BOTS.values())}
    redis_by_db = {n: redis_for(rs, n) for n in dbs}
    platform = redis_by_db[PLATFORM_REDIS_DB]
    counters = Counters()
    catchups: dict[str, CatchUp] = {}
    def on_mismatch(bot_id: str) -> None:
        if bot_id in catchups:
            catchups[bot_id].request_recent()

    ingest = Ingestor(pool, redis_by_db, {b: spec.redis_db for b, spec in BOTS.items()}, counters,
                      max_batch=cfg.max_batch, queue_size=cfg.queue_size, on_mismatch=on_mismatch,
                      fill_feed_maxlen=cfg.fill_feed_maxlen, batches_unannounced=cfg.max_unannounced_batches)
    watermarks = Watermarks(pool, ingest)
    dispatcher = Dispatcher(ingest, platform, counters, WalletThrottle(cfg.wallet_snapshot_every_s, time.monotonic))
    timing = _timing(cfg)
    rests: list[BybitRestClient] = []
    streams: list[Stream] = []
    def gap_catchup(bot_id: str) -> Callable[[datetime | None], None]:
        def on_up(gap_start: datetime | None) -> None:
            last_exec = dispatcher.last_exec_time.get(bot_id)
            if gap_start is not None and last_exec is not None:
                gap_start = min(gap_start, last_exec)
            catchups[bot_id].request(gap_start)
        return on_up

    for bot_id in bots:
        api_key, secret = keys.credentials(bot_id)
        rest = BybitRestClient(venue.rest_url, api_key, secret, venue.bybit_recv_window_ms)
        rests.append(rest)
        catchup = CatchUp(bot_id, rest, pool, ingest, counters, symbols=cfg.symbols, overlap_s=cfg.catchup_overlap_s,
                          lookback_days=cfg.catchup_lookback_days, every_s=cfg.catchup_every_s,
                          watermarks=watermarks)
        catchups[bot_id] = catchup
        catchup.request()
        streams.append(Stream(Source(f"ws:{bot_id}", bot_id), venue.ws_private_url, PRIVATE_TOPICS, dispatcher,
                              counters, timing, api_key=api_key, api_secret=secret, on_up=gap_catchup(bot_id)))
    streams.append(Stream(Source("ws:public"), venue.ws_public_url, public_topics(cfg.symbols, cfg.kline_intervals),
                          dispatcher, counters, timing))
    consumer = RecoveredConsumer(platform, ingest, counters, BOTS, cfg.consumer_name)  # any registered bot

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    quiet_gc()
    writer = asyncio.create_task(ingest.run(), name="writer")
    producers = [asyncio.create_task(s.run(stop), name=s.source.name) for s in streams]
    producers += [asyncio.create_task(c.run(stop), name=f"catchup:{b}") for b, c in catchups.items()]
    producers.append(asyncio.create_task(consumer.run(stop), name="recovered"))
    beats = asyncio.create_task(_heartbeats(streams, dispatcher, counters, ingest, platform, cfg.heartbeat_every_s,
                                            stop), name="heartbeats")
    pnl = asyncio.create_task(refresh_forever(pool, counters, cfg.pnl_refresh_every_s, stop), name="pnl_refresh")
    pruner = asyncio.create_task(ingest.drain_outbox_forever(stop), name="outbox_drain")
    marks = asyncio.create_task(watermarks.advance_forever(stop), name="watermarks")
    stopper = asyncio.create_task(stop.wait())
    # Every task runs until `stop`: one that ends before (an exception nothing handled, or a return) stops
    # the process with status 1, so the supervisor restarts it instead of it running on without a part.
    watched = [writer, *producers, beats, pnl, pruner, marks]
    await asyncio.wait([*watched, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopping = stop.is_set()  # a stop requested: tasks ending now are ending for it
    died = [t for t in watched if t.done() and not (stopping and (t.cancelled() or t.exception() is None))]
    for task in died:
        exc = None if task.cancelled() else task.exception()
        log.error("task_died", task=task.get_name(), error=repr(exc) if exc is not None else "ended before stop")
    if died:
        stop.set()

    log.info("listener_stopping", queued=ingest.pending())
    _, pending = await asyncio.wait(producers, timeout=cfg.shutdown_timeout_s / 2)
    for task in pending:
        task.cancel()
    await asyncio.gather(*producers, return_exceptions=True)
    # Finish the batch in flight and whatever was queued before the streams closed.
    deadline = time.monotonic() + cfg.shutdown_timeout_s / 2
    while ingest.pending() and not writer.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    marks.cancel()
    await asyncio.gather(marks, return_exceptions=True)
    left = ingest.undrained() if ingest.pending() else None
    if left is not None:
        # Held in memory only: the watermark (written below, or last second) keeps them for the next start's
        # catch-up, which reads them back from the exchange.
        log.error("shutdown_undrained", **left, deadline_s=cfg.shutdown_timeout_s,
                  recovery="the next start's catch-up from the watermark")
    try:
        await asyncio.wait_for(watermarks.advance_once(), timeout=2.0)
    except Exception as exc:  # noqa: BLE001 - the last written watermark still covers what is held
        log.warning("watermark_write_failed", error=type(exc).__name__)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await ingest.stop_batches()  # every batch task ends before the pool closes under it
    beats.cancel()
    pnl.cancel()
    pruner.cancel()
    await asyncio.gather(beats, pnl, pruner, return_exceptions=True)
    try:
        await ingest.drain_outbox()  # what is left is announced again by the next start
    except Exception as exc:  # noqa: BLE001
        log.warning("outbox_drain_failed", error=type(exc).__name__)
    try:
        await health.write_beats(platform, {s.source.conn_name: {"up": False, "error": "stopped"} for s in streams},
                                 {}, counters, datetime.now(UTC))
    except Exception:  # noqa: BLE001
        pass
    for rest in rests:
        await rest.close()
    for r in redis_by_db.values():
        await r.aclose()
    await pool.close()
    log.info("listener_stopped", **counters.as_dict())
    return 1 if died else 0


def quiet_gc() -> None:
    """Reference counting frees what the listener makes per fill (Decimals, strings, rows); the cycle
    collector finds next to nothing. Its full passes walked the ~70-100k long-lived objects and stalled
    every connection for 30-80 ms each under load (seen in the bench, collecting 0 objects). So what
    startup made goes out of its reach, and the young generation is collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def main(argv: list[str]) -> int:
    if argv[1:2] == ["health"]:
        return health.main()
    if argv[1:]:
        print("usage: python -m services.websocket_listener.main [health]", file=sys.stderr)
        return 2
    return uvloop.run(run())  # libuv's event loop: less CPU per socket read and write than asyncio's own


if __name__ == "__main__":
    sys.exit(main(sys.argv))
