"""``python -m telemetry_otel.host``: run a host aggregator in a process of its own.

``--listen 127.0.0.1:PORT`` (default ``TELEMETRY_OTEL_HOST_ENDPOINT``). Push exporters come from
``OTEL_METRICS_EXPORTER`` and its variables, exported every ``OTEL_METRIC_EXPORT_INTERVAL`` with
the host picture; host gauge rules from ``TELEMETRY_OTEL_HOST_GAUGE_RULES`` (``name=rule,...``).
SIGTERM and SIGINT first wait (``--drain-seconds``, 30) for the live workers to send their final
reports and exit: a signal to a whole process group reaches them at the same time
(``--supervisor-pid``: a process not to wait for, the gunicorn master that waits for the aggregator).
``--exit-when-idle``: stop once no live worker has been seen for ``--idle-seconds`` (default 10
report intervals, at least 10 s and at most 60 s); this is how a worker starts one, and when the
port is taken (another worker's aggregator won the race) it exits at once with status 0. SIGTERM
and SIGINT stop it after a final export.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel.exporters import exporters_from_env
from telemetry_otel.host._aggregator import HostAggregator
from telemetry_otel.host._fold import parse_gauge_rules
from telemetry_otel.host._link import parse_endpoint

__all__ = ["main"]

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run an aggregator until SIGTERM, SIGINT or idleness; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m telemetry_otel.host", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default=os.environ.get("TELEMETRY_OTEL_HOST_ENDPOINT", ""))
    parser.add_argument("--exit-when-idle", action="store_true")
    parser.add_argument("--idle-seconds", type=float, default=None)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--supervisor-pid", type=int, default=None)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        host, port = parse_endpoint(args.listen)
        config = TelemetryConfig.resolve()
        rules = parse_gauge_rules(os.environ.get("TELEMETRY_OTEL_HOST_GAUGE_RULES", ""))
        exporters = exporters_from_env(export_timeout_millis=config.export_timeout_millis)
    except (ValueError, ConfigurationError) as exc:
        print(f"telemetry-otel host: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    idle = args.idle_seconds
    if idle is None and args.exit_when_idle:
        idle = min(60.0, max(10.0, 10 * config.report_interval_millis / 1000))
    try:
        aggregator = HostAggregator.start(
            host,
            port,
            gauge_rules=rules,
            exporters=exporters,
            export_interval_millis=config.export_interval_millis,
            export_timeout_millis=config.export_timeout_millis,
            idle_exit_seconds=idle,
            config=config,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and args.exit_when_idle:
            return 0  # another worker's aggregator listens there: it serves the host
        print(f"telemetry-otel host: error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not aggregator.wait(0.2) and not stopping.is_set():
        pass
    if stopping.is_set() and not aggregator.drain(args.drain_seconds, supervisor_pid=args.supervisor_pid):
        # A signal to the whole process group reaches the workers too: their final reports come first.
        logging.getLogger("telemetry_otel.host").warning(
            "workers still report after %.0f s; the final export goes without them", args.drain_seconds
        )
    aggregator.close(config.shutdown_timeout_millis)
    return 0
