"""The ``telemetry-otel`` command line: ``serve`` the unified endpoint for the demo or an application,
``catalog check`` a metric catalog, and measure ``coverage`` of a catalog by what a runtime emits.

The CLI belongs to the core, which never imports the views package statically: the server's app
factory and the demo runtime are loaded by import string, the way ``uvicorn`` loads an app.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from telemetry_otel._cli_catalog import add_catalog_commands
from telemetry_otel._cli_common import (
    DEMO_FACTORY,
    EXIT_USAGE,
    CliError,
    app_dir_argument,
    demo_failure_arguments,
    demo_failures,
    load_object,
    seconds,
)
from telemetry_otel._cli_common import threshold_overrides as _thresholds
from telemetry_otel._cli_fleet import add_fleet_command
from telemetry_otel._cli_rules import add_rules_command
from telemetry_otel._cli_workers import ARGV_VARIABLE, serve_workers
from telemetry_otel._config import (
    DEFAULT_CACHE_TTL_SECONDS,
    DEFAULT_COLLECTION_TIMEOUT_MILLIS,
    DEFAULT_SERVICE_TIMEOUT_MILLIS,
    ConfigurationError,
)
from telemetry_otel._runtime import Telemetry
from telemetry_otel._setup import setup_telemetry
from telemetry_otel._version import __version__

__all__ = ["build_app", "main", "worker_app"]

APP_FACTORY = "telemetry_otel.views:create_app"
#: Environment variable holding the bearer token that guards the endpoint (unset: open).
TOKEN_VARIABLE = "TELEMETRY_OTEL_API_TOKEN"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``telemetry-otel`` and ``python -m telemetry_otel``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # serve --workers hands them to workers
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "serve" and args.app and args.seed is not None:
        parser.error("--seed applies to --demo only")
    if args.command == "serve" and args.app and args.demo_fail:
        parser.error("--demo-fail applies to --demo only")
    if args.command == "serve" and args.app and (args.demo_bad_value or args.demo_request_rate):
        parser.error("--demo-bad-value and --demo-request-rate apply to --demo only")
    if args.command == "serve" and args.app and args.stop_after_requests is not None:
        parser.error("--stop-after-requests applies to --demo only")
    if args.command in ("serve", "coverage") and args.app_dir is not None and not args.app:
        parser.error("--app-dir applies to --app only")
    if args.command == "coverage" and args.app and args.seed is not None:
        parser.error("--seed applies to the demo only, not to --app")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"telemetry-otel: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telemetry-otel", description="OpenTelemetry-native telemetry for Python service runtimes."
    )
    parser.add_argument("--version", action="version", version=f"telemetry-otel {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the unified telemetry endpoint and /metrics")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", action="store_true", help="run the simulated demo agent runtime")
    source.add_argument(
        "--app",
        metavar="MODULE:FACTORY",
        help="run your runtime: FACTORY(telemetry) registers its services and may return an object "
        "with an async run() and a close()",
    )
    app_dir_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8000, help="TCP port, 0 for any free one (default: 8000)"
    )
    serve.add_argument(
        "--agent", type=_agent, default="demo", help="agent id in the URL path (default: demo)"
    )
    serve.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the demo simulation (default: random, printed at start)",
    )
    serve.add_argument(
        "--stop-after-requests",
        type=_positive_int,
        default=None,
        metavar="N",
        help="demo only: stop the simulated traffic after the tick in which N requests were handled, "
        "so that every count stays where it is (default: never)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log verbosity"
    )
    serve.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an alert threshold (repeatable), e.g. --threshold cpu_warn=0.8",
    )
    serve.add_argument(
        "--cache-ttl",
        type=seconds,
        default=DEFAULT_CACHE_TTL_SECONDS,
        metavar="SECONDS",
        help="how old a collection may be before a request starts a new one in the background; 0: "
        f"every request waits for its own (default: {DEFAULT_CACHE_TTL_SECONDS:g})",
    )
    serve.add_argument(
        "--service-timeout-millis",
        type=_millis,
        default=None,
        metavar="MILLIS",
        help="bound on each service's snapshot in a collection (default: "
        f"TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS, else {DEFAULT_SERVICE_TIMEOUT_MILLIS:g})",
    )
    serve.add_argument(
        "--collection-timeout-millis",
        type=_millis,
        default=None,
        metavar="MILLIS",
        help="bound on reading the metrics in a collection (default: "
        f"TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS, else {DEFAULT_COLLECTION_TIMEOUT_MILLIS:g})",
    )
    demo_failure_arguments(serve)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes (uvicorn's, spawned); with N > 1 every worker answers for the whole host "
        "through a host aggregator this process runs (see docs/workers.md) (default: 1)",
    )
    serve.set_defaults(handler=_serve)
    add_catalog_commands(commands)
    add_rules_command(commands)
    add_fleet_command(commands)
    return parser


def _millis(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of milliseconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _agent(text: str) -> str:
    if not text or not all(char.isalnum() or char in "-_." for char in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an agent id (letters, digits, '-', '_', '.')")
    return text


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (1 or more)")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    token = _token_from_env()  # checked before anything starts; never printed nor logged
    if args.workers > 1:
        return serve_workers(args, factory=f"{__name__}:worker_app", bind=_bind, url_host=_url_host)
    app, telemetry = build_app(args, token)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    access = f", bearer token from {TOKEN_VARIABLE}" if token else ""
    print(
        f"telemetry-otel {__version__}: serving agent {args.agent!r} "
        f"({len(telemetry.components)} components{', SDK disabled' if telemetry.disabled else ''}{access})\n"
        f"  http://{_url_host(host)}:{port}/api/{args.agent}/v1/telemetry\n"
        f"  http://{_url_host(host)}:{port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn shuts down cleanly on SIGINT and SIGTERM (the final export included), then re-raises
    # the signal to the handler it found: a graceful stop is a normal exit, status 0.
    previous = signal.signal(signal.SIGTERM, _stopped_by_sigterm)
    try:
        with contextlib.suppress(KeyboardInterrupt, _SigtermStopError):
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def build_app(args: argparse.Namespace, token: str | None) -> tuple[Any, Telemetry]:
    """The runtime ``serve`` runs (demo or ``--app``) and its app, from ``serve``'s arguments."""
    try:
        explicit_name = None if os.environ.get("OTEL_SERVICE_NAME") else args.agent
        # serve answers /metrics on its own port: no second scrape server for OTEL_METRICS_EXPORTER.
        telemetry = setup_telemetry(
            service_name=explicit_name,
            service_timeout_millis=args.service_timeout_millis,
            collection_timeout_millis=args.collection_timeout_millis,
            prometheus_server=False,
        )
    except ConfigurationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        runtime = _start_runtime(args, telemetry)
    except BaseException:
        telemetry.shutdown()
        raise
    background: list[Callable[[], Coroutine[Any, Any, None]]] = []
    run = getattr(runtime, "run", None)
    if run is not None and inspect.iscoroutinefunction(run):
        background.append(run)
    on_shutdown: list[Callable[[], None]] = []
    close = getattr(runtime, "close", None)
    if callable(close):
        on_shutdown.append(close)
    on_shutdown.append(telemetry.shutdown)
    create_app = load_object(APP_FACTORY)
    try:
        app = create_app(
            telemetry,
            agent=args.agent,
            cache_ttl_seconds=args.cache_ttl,
            thresholds=_thresholds(args.threshold),
            token=token,
            background=background,
            on_shutdown=on_shutdown,
            # A runtime's own HTTP API (the demo's ``/demo``), by mount path.
            apps=dict(getattr(runtime, "http_apps", None) or {}),
        )
    except ValueError as exc:
        telemetry.shutdown()
        raise CliError(str(exc), EXIT_USAGE) from None
    return app, telemetry


def worker_app() -> Any:
    """One spawned worker of ``serve --workers N`` (uvicorn's app factory): ``serve``'s app, set up
    from ``serve``'s arguments (``TELEMETRY_OTEL_SERVE_ARGV``) as a worker of the host."""
    args = _parser().parse_args(json.loads(os.environ[ARGV_VARIABLE]))
    app, _ = build_app(args, _token_from_env())
    return app


class _SigtermStopError(Exception):
    """SIGTERM arrived after the server had shut down gracefully."""


def _stopped_by_sigterm(signum: int, frame: object) -> None:
    raise _SigtermStopError


def _token_from_env() -> str | None:
    """The bearer token of ``TELEMETRY_OTEL_API_TOKEN`` (None: unset or empty), refused when no
    request could present it (whitespace around it, as a secret file ending in a newline gives)."""
    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is None:
        return None
    if token != token.strip():
        raise CliError(
            f"{TOKEN_VARIABLE} has leading or trailing whitespace (a secret file ending in a newline?); "
            "no request could present it: strip it (TOKEN=$(cat file) drops a final newline)",
            EXIT_USAGE,
        )
    if not token.isprintable():
        raise CliError(
            f"{TOKEN_VARIABLE} contains a control character, which no HTTP header can carry", EXIT_USAGE
        )
    return token


def _start_runtime(args: argparse.Namespace, telemetry: Telemetry) -> object:
    if args.demo:
        factory = load_object(DEMO_FACTORY)
        if args.seed is None:
            args.seed = random.SystemRandom().randrange(2**31)
        print(f"telemetry-otel: demo simulation seed {args.seed} (reproduce with --seed)", file=sys.stderr)
        options: dict[str, Any] = {"seed": args.seed}
        failures = demo_failures(args)
        if failures:
            options["failures"] = failures
        if args.stop_after_requests is not None:
            options["max_requests"] = args.stop_after_requests
        if args.demo_bad_value:
            options["bad_values"] = args.demo_bad_value
        if args.demo_request_rate is not None:
            options["request_rate_per_second"] = args.demo_request_rate
        try:
            return factory(telemetry, **options)
        except ValueError as exc:
            given = [
                flag
                for flag, values in (
                    ("--demo-fail", args.demo_fail),
                    ("--demo-bad-value", args.demo_bad_value),
                )
                if values
            ]
            raise CliError(f"{'/'.join(given) or '--demo'}: {exc}", EXIT_USAGE) from None
    factory = load_object(args.app, args.app_dir or ".")
    if not callable(factory):
        raise CliError(f"{args.app!r} is not callable", EXIT_USAGE)
    try:
        return factory(telemetry)
    except Exception as exc:
        raise CliError(f"{args.app} failed: {type(exc).__name__}: {exc}") from None


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve host {host!r}: {exc.strerror}", EXIT_USAGE) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
