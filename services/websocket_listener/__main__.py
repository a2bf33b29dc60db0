"""`python -m services.websocket_listener [health]`: the same as `... .main`."""
from __future__ import annotations

import sys

from services.websocket_listener.main import main

sys.exit(main(sys.argv))
