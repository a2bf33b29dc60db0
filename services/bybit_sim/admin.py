"""Admin API (loopback only, token and JSON required): faults, execution generation, ground truth,
snapshots, price pins, the stepped clock.

A web page can make a browser post a form to a loopback port (text/plain, form-encoded or multipart,
no custom headers) without any CORS preflight; it cannot add `X-Admin-Token` nor send
`application/json` cross-origin without a preflight this server never answers. So every route needs
the token, and POST and DELETE need a JSON content type.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.bybit_sim.faults import INSTANT_KINDS, parse_fault
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import wall_ms
from services.bybit_sim.models import SimAccount, VenueError
from services.bybit_sim.render import execution_rest, num

if TYPE_CHECKING:
    from services.bybit_sim.venue import Venue


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _ok(**payload: Any) -> web.Response:
    return web.json_response({"ok": True, **payload})


def _fail(err: VenueError, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "retCode": err.ret_code, "error": err.ret_msg}, status=status)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text() or "{}")
    except ValueError:
        raise VenueError(10001, "body is not valid JSON") from None


async def post_fault(request: web.Request, venue: Venue) -> web.Response:
    fault = parse_fault(await _body(request), wall_ms())
    if fault.kind in INSTANT_KINDS:
        targets = venue.hub.select(fault.api_key, fault.channel)
        for conn in targets:
            if fault.kind == "reset":
                conn.reset()
            else:
                await conn.close_clean()
        return _ok(kind=fault.kind, affected=len(targets))
    venue.faults.add(fault)
    return _ok(kind=fault.kind, until_ms=fault.until_ms)


async def get_faults(request: web.Request, venue: Venue) -> web.Response:
    return _ok(faults=venue.faults.describe(wall_ms()))


async def delete_faults(request: web.Request, venue: Venue) -> web.Response:
    venue.faults.clear()
    return _ok()


async def post_generate(request: web.Request, venue: Venue) -> web.Response:
    gen = venue.start_generation(await _body(request))
    return _ok(id=gen.id)


async def get_generate(request: web.Request, venue: Venue) -> web.Response:
    gen = venue.generations.get(request.match_info["gen_id"])
    if gen is None:
        return _fail(VenueError(10001, "unknown generation id"), 404)
    return _ok(**gen.status())


async def get_executions(request: web.Request, venue: Venue) -> web.Response:
    acct = venue.engine.accounts.get(request.match_info["api_key"])
    if acct is None:
        return _fail(VenueError(10003, "unknown api_key"), 404)
    if request.query.get("venue_time") == "1":  # plus the venue clock of each (not a Bybit field)
        return _ok(list=[{**execution_rest(e), "venueTimeMs": str(e.venue_time_ms)} for e in acct.executions.rows])
    return _ok(list=[execution_rest(e) for e in acct.executions.rows])


async def get_accounts(request: web.Request, venue: Venue) -> web.Response:
    return _ok(list=[{"api_key": a.api_key, "balance": num(a.balance), "executions": len(a.executions)}
                     for a in venue.engine.accounts.values()])


async def post_account(request: web.Request, venue: Venue) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("api_key"), str) \
            or not isinstance(body.get("secret"), str) or not body["api_key"] or not body["secret"]:
        raise VenueError(10001, "api_key and secret are required strings")
    try:
        balance = Decimal(str(body.get("balance", "100000")))
    except InvalidOperation:
        raise VenueError(10001, "balance invalid") from None
    if body["api_key"] in venue.engine.accounts:
        raise VenueError(10001, "api_key exists")
    venue.engine.accounts[body["api_key"]] = SimAccount(body["api_key"], body["secret"], balance)
    return _ok(api_key=body["api_key"])


async def post_snapshot(request: web.Request, venue: Venue) -> web.Response:
    path = venue.snapshot()
    if path is None:
        raise VenueError(10001, "the venue was started without --state-file")
    return _ok(path=str(path))


async def post_price(request: web.Request, venue: Venue) -> web.Response:
    """Pin a symbol's price (tests need known fill prices); `price: null` resumes the replay."""
    body = await _body(request)
    if not isinstance(body, dict) or body.get("symbol") not in INSTRUMENTS:
        raise VenueError(10001, f"symbol must be one of {sorted(INSTRUMENTS)}")
    symbol, price = body["symbol"], body.get("price")
    if price is None:
        venue.market.pins.pop(symbol, None)
        venue.advance()
        return _ok(symbol=symbol, price=None)
    try:
        value = Decimal(str(price))
    except InvalidOperation:
        raise VenueError(10001, "price invalid") from None
    inst = INSTRUMENTS[symbol]
    if not value.is_finite() or value <= 0 or not inst.on_tick(value):
        raise VenueError(10001, "price must be positive and on the tick size")
    venue.advance()  # the path up to now first, then the jump to the pinned price
    venue.market.pins[symbol] = value
    venue.advance()
    return _ok(symbol=symbol, price=str(value))


async def post_funding(request: web.Request, venue: Venue) -> web.Response:
    """Settle funding now for one or all symbols (the 8-hourly settlement, on demand)."""
    body = await _body(request)
    symbols = [body["symbol"]] if isinstance(body, dict) and body.get("symbol") else list(INSTRUMENTS)
    if any(s not in INSTRUMENTS for s in symbols):
        raise VenueError(10001, "symbol invalid")
    events = []
    for s in symbols:
        events += venue.engine.settle_funding(s, venue.market.price(s), venue.market.funding_rate, venue.stamp_ms())
    venue.publish(venue.run_engine(events))
    return _ok(executions=sum(1 for e in events if e.topic == "execution"))


async def get_clock(request: web.Request, venue: Venue) -> web.Response:
    stepper = venue.stepper
    state = stepper.status(wall_ms()) if stepper is not None else {"stepped": False, "held": False}
    return _ok(venue_time_ms=venue.market.clock.now(), speed=venue.config.speed,
               wall_replay_shift_ms=venue.wall_replay_shift_ms, **state)


async def post_clock_step(request: web.Request, venue: Venue) -> web.Response:
    """End the current hold of the stepped clock now."""
    if venue.stepper is None:
        raise VenueError(10001, "the venue was started without --stepped")
    if not venue.stepper.request_step():
        raise VenueError(10001, "the clock is not held")
    return _ok()


async def get_health(request: web.Request, venue: Venue) -> web.Response:
    return _ok(venue_time_ms=venue.market.clock.now(), connections=len(venue.hub.conns))


ADMIN_ROUTES = [
    ("POST", "/admin/faults", post_fault), ("GET", "/admin/faults", get_faults),
    ("DELETE", "/admin/faults", delete_faults), ("POST", "/admin/generate", post_generate),
    ("GET", "/admin/generate/{gen_id}", get_generate), ("GET", "/admin/accounts", get_accounts),
    ("POST", "/admin/accounts", post_account), ("GET", "/admin/accounts/{api_key}/executions", get_executions),
    ("POST", "/admin/snapshot", post_snapshot), ("POST", "/admin/price", post_price),
    ("POST", "/admin/funding", post_funding), ("GET", "/admin/health", get_health),
    ("GET", "/admin/clock", get_clock), ("POST", "/admin/clock/step", post_clock_step),
]


TOKEN_HEADER = "X-Admin-Token"


def admin_handler(fn: Any, venue: Venue, token: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not _is_loopback(request.remote):
            return web.json_response({"ok": False, "error": "admin API is loopback only"}, status=403)
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, "").encode(), token.encode()):
            return web.json_response({"ok": False, "error": f"{TOKEN_HEADER} missing or wrong"}, status=401)
        if request.method in ("POST", "DELETE") and request.content_type != "application/json":
            return web.json_response({"ok": False, "error": "Content-Type must be application/json"}, status=415)
        try:
            return await fn(request, venue)
        except VenueError as err:
            return _fail(err)
    return handler
