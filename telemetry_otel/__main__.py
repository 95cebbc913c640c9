"""``python -m telemetry_otel``: the same as the ``telemetry-otel`` command."""

from __future__ import annotations

import sys

from telemetry_otel._cli import main

if __name__ == "__main__":
    sys.exit(main())
