"""Entry point: `python main.py <command>` (in the container), `python services/trade_sync/main.py`,
or `python -m services.trade_sync`. Makes the repository root importable when run as a script."""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = Path(__file__).resolve().parent
    _root = str(_here.parents[1])
    # the script's own folder would shadow top-level modules (config, status, ...): put the root there
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    if _root not in sys.path:
        sys.path.insert(0, _root)

from services.trade_sync.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
