from services.trade_sync.cli import main

raise SystemExit(main())
