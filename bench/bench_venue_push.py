"""How many executions per second the simulated venue pushes on ONE private connection.

Starts the venue as a subprocess, authenticates one private WebSocket client, subscribes to
`execution` (or the topics given), asks `/admin/generate` for N executions at a target rate and
counts execution rows as they arrive. Prints the figure; the listener benchmark needs >= 5,000/s.

    .venv/bin/python bench/bench_venue_push.py --count 50000 --rate 100000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.bybit_sim.handle import VenueAdmin, VenueProcess  # noqa: E402
from shared.bybit.auth import sign_ws_auth  # noqa: E402

KEY, SECRET = "bench-key", "bench-secret"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def run(count: int, rate: float, rows_per_frame: int, topics: list[str],
              compression: str | None = "deflate") -> dict[str, float]:
    with VenueProcess([(KEY, SECRET, "100000000")], speed=1.0) as venue:
        async with websockets.connect(venue.ws_private_url, max_size=None, compression=compression) as ws, \
                VenueAdmin(venue.admin_url) as admin:
            expires = int(time.time() * 1000) + 10_000
            await ws.send(json.dumps({"op": "auth", "args": [KEY, expires, sign_ws_auth(SECRET, expires)]}))
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "args": topics}))
            await ws.recv()
            assert venue.proc is not None
            cpu_before = cpu_seconds(venue.proc.pid)
            gen_id = await admin.generate(KEY, count, rate, ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
                                          prefix="bench", rows_per_frame=rows_per_frame)
            started = time.perf_counter()
            first = None
            rows = frames = 0
            while rows < count:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                frames += 1
                if frame.get("topic") == "execution":
                    if first is None:
                        first = time.perf_counter()
                    rows += len(frame["data"])
            ended = time.perf_counter()
            status = await admin.wait_generation(gen_id)
            user, system = (after - before for after, before in zip(cpu_seconds(venue.proc.pid), cpu_before,
                                                                    strict=True))
    return {"rows": rows, "venue_cpu_s": user + system, "venue_sys_s": system, "frames": frames,
            "seconds": ended - started,
            "per_s": rows / (ended - started), "per_s_after_first": rows / (ended - (first or started)),
            "generator_state": status["state"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=100_000, help="target executions per second")
    parser.add_argument("--rows-per-frame", type=int, default=100, help="max execution rows in one push")
    parser.add_argument("--topics", default="execution", help="comma-separated private topics to subscribe")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="permessage-deflate offered by the client (the listener connects with none)")
    args = parser.parse_args()
    result = asyncio.run(run(args.count, args.rate, args.rows_per_frame, args.topics.split(","),
                             None if args.compression == "none" else args.compression))
    print(f"venue push: {result['rows']} executions in {result['seconds']:.2f} s on one private connection "
          f"= {result['per_s']:,.0f} executions/s (target rate {args.rate:,.0f}/s, "
          f"rows/frame <= {args.rows_per_frame}, "
          f"topics {args.topics}, compression {args.compression}, {result['frames']} frames, "
          f"generator {result['generator_state']}); "
          f"venue CPU {result['venue_cpu_s']:.2f} s (system {result['venue_sys_s']:.2f} s) = "
          f"{result['venue_cpu_s'] / result['rows'] * 1e6:.0f} us per execution")
    return 0


if __name__ == "__main__":
    sys.exit(main())
