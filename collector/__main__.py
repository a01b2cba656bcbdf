"""``python -m spanguard.collector --config collector.yaml``."""

from spanguard.collector.cli import main

if __name__ == "__main__":  # worker processes are spawned and import this module again: they must not run it
    raise SystemExit(main())
