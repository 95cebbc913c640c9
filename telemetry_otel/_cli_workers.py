"""``telemetry-otel serve --workers N``: N worker processes that each answer for the whole host.

This process is uvicorn's supervisor: it runs the host aggregator (on
``TELEMETRY_OTEL_HOST_ENDPOINT``, else a free loopback port) on threads of its own (uvicorn spawns
its workers, never forks, so the threads are safe here), binds the listening socket and lets
uvicorn spawn N workers. Each worker re-reads ``serve``'s arguments (``TELEMETRY_OTEL_SERVE_ARGV``),
sets its runtime up as a host worker and serves the same app as ``serve`` does. The push exporters
run here, once for the host. A stop signal stops the workers (their final reports come in), then
the aggregator exports a final time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
from collections.abc import Callable

from telemetry_otel._cli_common import EXIT_USAGE, CliError
from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel._version import __version__
from telemetry_otel.exporters import exporters_from_env
from telemetry_otel.host._aggregator import HostAggregator
from telemetry_otel.host._fold import parse_gauge_rules
from telemetry_otel.host._link import parse_endpoint

__all__ = ["ARGV_VARIABLE", "serve_workers"]

#: ``serve``'s arguments, as JSON, for the spawned workers.
ARGV_VARIABLE = "TELEMETRY_OTEL_SERVE_ARGV"
_HOST_VARIABLE = "TELEMETRY_OTEL_HOST_ENDPOINT"
#: How long the supervisor waits for the workers' final reports after they were told to stop.
_DRAIN_SECONDS = 10.0


def serve_workers(
    args: argparse.Namespace,
    *,
    factory: str,
    bind: Callable[[str, int], socket.socket],
    url_host: Callable[[str], str],
) -> int:
    """Run the aggregator and N uvicorn workers (``factory``: the import string of the workers' app
    factory) until a stop signal; the exit status. ``bind`` and ``url_host`` are ``serve``'s."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    argv = list(args.argv)
    if args.demo and args.seed is None:  # one simulation for every worker
        args.seed = random.SystemRandom().randrange(2**31)
        argv += ["--seed", str(args.seed)]
    try:
        config = TelemetryConfig.resolve()
        endpoint = (
            parse_endpoint(os.environ[_HOST_VARIABLE]) if os.environ.get(_HOST_VARIABLE) else ("127.0.0.1", 0)
        )
        aggregator = HostAggregator.start(
            *endpoint,
            gauge_rules=parse_gauge_rules(os.environ.get("TELEMETRY_OTEL_HOST_GAUGE_RULES", "")),
            exporters=exporters_from_env(export_timeout_millis=config.export_timeout_millis),
            export_interval_millis=config.export_interval_millis,
            export_timeout_millis=config.export_timeout_millis,
            config=config,
        )
    except (ValueError, ConfigurationError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(
            f"cannot run the host aggregator on {endpoint[0]}:{endpoint[1]}: {exc.strerror}"
        ) from None
    try:
        host_endpoint = "{}:{}".format(*aggregator.address)
        os.environ[_HOST_VARIABLE] = host_endpoint  # spawned workers inherit the environment
        os.environ[ARGV_VARIABLE] = json.dumps(argv)
        sock = bind(args.host, args.port)
        host, port = sock.getsockname()[:2]
        print(
            f"telemetry-otel {__version__}: serving agent {args.agent!r} with {args.workers} workers, "
            f"one host picture (host aggregator on {host_endpoint})\n"
            f"  http://{url_host(host)}:{port}/api/{args.agent}/v1/telemetry\n"
            f"  http://{url_host(host)}:{port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        uvicorn_config = uvicorn.Config(
            factory,
            factory=True,
            workers=args.workers,
            log_level=args.log_level,
            access_log=False,
            lifespan="on",
        )
        Multiprocess(uvicorn_config, sockets=[sock]).run()
    finally:
        aggregator.drain(_DRAIN_SECONDS)
        aggregator.close(config.shutdown_timeout_millis)
    return 0
