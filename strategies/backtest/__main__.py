import sys

from strategies.backtest.cli import main

sys.exit(main())
