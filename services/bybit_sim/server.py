"""aiohttp wiring: one port serves REST, both WebSocket channels and the admin API."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from services.bybit_sim.admin import ADMIN_ROUTES, admin_handler
from services.bybit_sim.admin_token import TOKEN_ENV, resolve_token
from services.bybit_sim.rest import MAX_BODY_BYTES, serve_rest
from services.bybit_sim.state import read_state
from services.bybit_sim.venue import AccountSpec, Venue, VenueConfig
from services.bybit_sim.ws import serve_ws
from shared.log import configure_logging, register_secret

log = structlog.get_logger()


def build_app(venue: Venue, admin_token: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def public_ws(request: web.Request) -> web.StreamResponse:
        return await serve_ws(request, venue, "public")

    async def private_ws(request: web.Request) -> web.StreamResponse:
        return await serve_ws(request, venue, "private")

    async def rest(request: web.Request) -> web.StreamResponse:
        return await serve_rest(request, venue)

    app.router.add_get("/v5/public/linear", public_ws)
    app.router.add_get("/v5/private", private_ws)
    for method, path, fn in ADMIN_ROUTES:
        app.router.add_route(method, path, admin_handler(fn, venue, admin_token))
    app.router.add_route("*", "/v5/{tail:.*}", rest)
    return app


def _token_file(config: VenueConfig, admin_token_file: Path | None, port: int) -> Path | None:
    """Where the token is kept for tools: the file given, else beside the state file, else in the temp dir."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return admin_token_file
    if admin_token_file is not None:
        return admin_token_file
    if config.state_file is not None:
        return config.state_file.with_name(config.state_file.name + ".admin-token")
    return Path(tempfile.gettempdir()) / f"bybit_sim-{port}.admin-token"


async def run_server(config: VenueConfig, accounts: list[AccountSpec], host: str, port: int,
                     admin_token_file: Path | None = None) -> None:
    configure_logging("bybit_sim")
    state: dict[str, Any] | None = read_state(config.state_file) if config.state_file else None
    venue = Venue(config, accounts, state)
    register_secret(*(a.secret for a in venue.engine.accounts.values()))
    sock = socket.create_server((host, port), reuse_port=False)  # bound first: the default token file names the port
    bound = sock.getsockname()[1]
    token_path = _token_file(config, admin_token_file, bound)
    admin_token = resolve_token(dict(os.environ), token_path)
    register_secret(admin_token)
    runner = web.AppRunner(build_app(venue, admin_token), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    venue.start()
    print(f"bybit_sim ready on {host}:{bound} accounts={len(venue.engine.accounts)}", flush=True)  # handles wait for it
    log.info("venue_ready", host=host, port=bound, accounts=len(venue.engine.accounts), speed=config.speed,
             seed=config.seed, state_file=str(config.state_file) if config.state_file else None,
             admin_auth_from=f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV, "").strip() else str(token_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    path = venue.snapshot()
    log.info("venue_stopping", snapshot=str(path) if path else None)
    await venue.stop()
    await runner.cleanup()
