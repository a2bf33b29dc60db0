"""CLI: `serve` runs the venue; `seed-history` writes months of past executions into a state file."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn

from services.bybit_sim.state import read_state, stamp_clock_conflict, wall_replay_conflict
from services.bybit_sim.stepping import StepConfig
from services.bybit_sim.venue import STAMP_CLOCKS, AccountSpec, VenueConfig


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"bybit_sim: error: {message}", file=sys.stderr)
        sys.exit(2)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return value


def parse_account(text: str) -> AccountSpec:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError("accounts are KEY:SECRET[:BALANCE]")
    balance = Decimal(100000)
    if len(parts) == 3:
        balance = _decimal(parts[2])
        if balance < 0:
            raise argparse.ArgumentTypeError("an account balance must be >= 0")
    return AccountSpec(parts[0], parts[1], balance)


def _accounts(text: str) -> list[AccountSpec]:
    specs = [parse_account(t) for t in text.split(",") if t]
    if not specs:
        raise argparse.ArgumentTypeError("at least one account KEY:SECRET[:BALANCE] is required")
    if len({s.api_key for s in specs}) != len(specs):
        raise argparse.ArgumentTypeError("duplicate api key in --accounts")
    return specs


ACCOUNTS_ENV = "BYBIT_SIM_ACCOUNTS"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m services.bybit_sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    serve = sub.add_parser("serve", help="run the simulated venue")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=0)
    serve.add_argument("--accounts", type=_accounts, default=[],
                       help=f"KEY:SECRET[:BALANCE],...; default: ${ACCOUNTS_ENV} (keeps secrets off the command line)")
    serve.add_argument("--speed", type=_positive_float, help="venue time / wall time (default 1000)")
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--state-file", type=Path)
    serve.add_argument("--partial-fills", action="store_true")
    serve.add_argument("--slippage-bps", type=_decimal, default=Decimal(0))
    serve.add_argument("--order-rate-limit", type=_positive_int, default=10)
    serve.add_argument("--query-rate-limit", type=_positive_int, default=50)
    serve.add_argument("--ip-rate-limit", type=_positive_int, default=600)
    serve.add_argument("--funding-rate", type=_decimal, default=Decimal("0.0001"))
    serve.add_argument("--tick-ms", type=_positive_int, default=50)
    serve.add_argument("--idle-timeout-s", type=_positive_float, default=600.0)
    serve.add_argument("--ack-delay-ms", type=int, default=50, help="delay of subscribe acks (network round trip)")
    serve.add_argument("--admin-token-file", type=Path,
                       help="the admin API token: read from this file, or a new one written to it (0600); "
                            "BYBIT_SIM_ADMIN_TOKEN in the environment takes precedence")
    serve.add_argument("--stepped", action="store_true",
                       help="stop venue time at every 5-minute candle close until the bots' orders are in")
    serve.add_argument("--step-quiet-ms", type=_positive_int, default=300,
                       help="a hold ends after this long with no order request")
    serve.add_argument("--step-max-ms", type=_positive_int, default=5000, help="a hold ends after this long at most")
    serve.add_argument("--stamp-clock", choices=STAMP_CLOCKS, default="wall",
                       help="the clock of execTime, createdTime/updatedTime, push creationTime and REST time "
                            "windows: wall (default, as on Bybit) or venue (the replayed candles' time)")
    serve.add_argument("--wall-replay", action="store_true",
                       help="venue time is wall time (speed 1): the candles are replayed shifted by whole weeks "
                            "so that now falls in them, as the local platform (`make run`) needs")
    seed = sub.add_parser("seed-history", help="write past executions for an account into a state file")
    seed.add_argument("--state-file", type=Path, required=True)
    seed.add_argument("--account", type=parse_account, required=True)
    seed.add_argument("--months", type=_positive_int, default=3)
    seed.add_argument("--executions", type=_positive_int, default=30000)
    seed.add_argument("--seed", type=int, default=7)
    seed.add_argument("--end-ms", type=_positive_int, help="end of the history (default: now, hour-aligned)")
    seed.add_argument("--link-prefix", default="sim", help="orderLinkIds are {prefix}-hist-{n}")
    seed.add_argument("--stamp-clock", choices=STAMP_CLOCKS, default="wall",
                      help="venue: for `serve --stamp-clock venue`, the history ends at the venue's start time")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from services.bybit_sim.server import run_server
        if args.wall_replay:
            for given, option in ((args.stepped, "--stepped"), (args.speed is not None, "--speed")):
                if given:  # argparse's own words for mutually exclusive options
                    parser.error(f"argument {option}: not allowed with argument --wall-replay")
            args.speed = 1.0
        elif args.speed is None:
            args.speed = 1000.0
        if args.state_file is not None and not args.state_file.parent.is_dir():
            print(f"bybit_sim: error: --state-file folder does not exist: {args.state_file.parent}", file=sys.stderr)
            return 2
        config = VenueConfig(seed=args.seed, speed=args.speed, partial_fills=args.partial_fills,
                             slippage_bps=args.slippage_bps, ip_limit=args.ip_rate_limit,
                             order_limit=args.order_rate_limit, query_limit=args.query_rate_limit,
                             state_file=args.state_file, tick_ms=args.tick_ms, idle_timeout_s=args.idle_timeout_s,
                             funding_rate=args.funding_rate, ack_delay_ms=max(args.ack_delay_ms, 0),
                             step=StepConfig(args.step_quiet_ms, args.step_max_ms) if args.stepped else None,
                             stamp_clock=args.stamp_clock, wall_replay=args.wall_replay)
        if args.state_file is not None:
            doc = read_state(args.state_file)
            conflict = stamp_clock_conflict(doc, args.stamp_clock) or wall_replay_conflict(doc, args.wall_replay)
            if conflict:
                print(f"bybit_sim: error: {conflict}", file=sys.stderr)
                return 2
        accounts = args.accounts
        if not accounts and os.environ.get(ACCOUNTS_ENV):
            try:
                accounts = _accounts(os.environ[ACCOUNTS_ENV])
            except argparse.ArgumentTypeError as exc:
                print(f"bybit_sim: error: {ACCOUNTS_ENV}: {exc}", file=sys.stderr)
                return 2
        if args.admin_token_file is not None and not args.admin_token_file.parent.is_dir():
            print(f"bybit_sim: error: --admin-token-file folder does not exist: {args.admin_token_file.parent}",
                  file=sys.stderr)
            return 2
        asyncio.run(run_server(config, accounts, args.host, args.port, args.admin_token_file))
        return 0
    from services.bybit_sim.history import seed_history
    if not args.state_file.parent.is_dir():
        print(f"bybit_sim: error: --state-file folder does not exist: {args.state_file.parent}", file=sys.stderr)
        return 2
    try:
        count = seed_history(args.state_file, args.account, args.months, args.executions, args.seed, args.end_ms,
                             args.link_prefix, args.stamp_clock)
    except ValueError as exc:
        print(f"bybit_sim: error: {exc}", file=sys.stderr)
        return 2
    print(f"bybit_sim: wrote {count} executions for {args.account.api_key} to {args.state_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
