"""ShortSeller's process (the `shortseller` container's command): `python -m strategies.shortseller`.

Its configuration comes from the environment (`SHORTSELLER_*`, see config.py and .env.example; bad
configuration: one line on stderr, exit 2); it trades on its own account `shortseller_001` with
`SHORTSELLER_BYBIT_API_KEY/SECRET`, where `BYBIT_VENUE` says, through the same live runtime as
`python -m strategies.run` (registered in trading.bots, heartbeat, pause / resume / flatten, events
to `events:shortseller_001`, the liveness record read by `python -m strategies.health`).
"""
from __future__ import annotations

import sys

from strategies.run import launch
from strategies.shortseller.config import environment, parse_config
from strategies.shortseller.strategy import ShortSeller


def main(argv: list[str]) -> int:
    if argv:
        print(f"strategies.shortseller: error: takes no arguments (got {' '.join(argv)}); "
              "its settings are SHORTSELLER_* variables", file=sys.stderr)
        return 2
    return launch(lambda: ShortSeller(parse_config(environment())), service="shortseller")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
