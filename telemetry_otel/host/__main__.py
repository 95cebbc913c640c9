"""``python -m telemetry_otel.host``: see :mod:`telemetry_otel.host._main`."""

from __future__ import annotations

import sys

from telemetry_otel.host._main import main

if __name__ == "__main__":
    sys.exit(main())
