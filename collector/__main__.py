"""``python -m spanguard.collector --config collector.yaml``."""

from spanguard.collector.cli import main

raise SystemExit(main())
