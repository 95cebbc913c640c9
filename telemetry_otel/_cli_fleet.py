"""``telemetry-otel fleet``: serve every agent's views, and the fleet's, from a Prometheus-compatible TSDB.

The core never imports the views: the fleet app factory is loaded by import string, like ``serve``'s.
Secrets never go on the command line (a process list shows it): the TSDB's bearer token and basic
auth password come from the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from telemetry_otel._cli_common import EXIT_USAGE, CliError, load_object, seconds
from telemetry_otel._config import DEFAULT_FLEET_CACHE_TTL_SECONDS
from telemetry_otel._version import __version__

__all__ = ["FLEET_APP_FACTORY", "TSDB_PASSWORD_VARIABLE", "TSDB_TOKEN_VARIABLE", "add_fleet_command"]

FLEET_APP_FACTORY = "telemetry_otel.views:create_fleet_app"
_VIEWS = "telemetry_otel.views"
#: Environment variable holding the TSDB's bearer token.
TSDB_TOKEN_VARIABLE = "TELEMETRY_OTEL_TSDB_TOKEN"
#: Environment variable holding the TSDB's basic auth password (with ``--tsdb-user``).
TSDB_PASSWORD_VARIABLE = "TELEMETRY_OTEL_TSDB_PASSWORD"
_API_TOKEN_VARIABLE = "TELEMETRY_OTEL_API_TOKEN"


def add_fleet_command(commands: Any) -> None:
    """Add ``fleet`` to the ``telemetry-otel`` subcommands."""
    fleet = commands.add_parser(
        "fleet", help="serve every agent's views and a fleet summary from a Prometheus-compatible TSDB"
    )
    fleet.add_argument(
        "--prometheus",
        required=True,
        metavar="URL",
        help="base URL of the Prometheus HTTP query API (Prometheus, VictoriaMetrics, Mimir, Thanos)",
    )
    fleet.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="header sent with every query (repeatable), e.g. 'X-Scope-OrgID: team-a'",
    )
    fleet.add_argument(
        "--tsdb-user",
        default=None,
        metavar="USER",
        help=f"basic auth user for the TSDB; the password comes from {TSDB_PASSWORD_VARIABLE} "
        f"(a bearer token from {TSDB_TOKEN_VARIABLE} instead)",
    )
    fleet.add_argument(
        "--tsdb-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="bound on each query; a TSDB slower than this is unavailable (503) (default: 10)",
    )
    fleet.add_argument(
        "--insecure-skip-verify", action="store_true", help="accept any TLS certificate from the TSDB"
    )
    fleet.add_argument(
        "--lookback",
        type=seconds,
        default=86_400.0,
        metavar="SECONDS",
        help="how far back agents are looked for (default: 86400, one day)",
    )
    fleet.add_argument(
        "--window",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="window of rates and windowed quantiles (default: 300)",
    )
    fleet.add_argument(
        "--down-after",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="an agent whose newest collection is older than this is down (default: 300)",
    )
    fleet.add_argument(
        "--ignore-label",
        action="append",
        default=[],
        metavar="LABEL",
        help="a label the scrape or remote write adds (repeatable; job and instance always), "
        "e.g. an external_labels key",
    )
    fleet.add_argument(
        "--cache-ttl",
        type=seconds,
        default=DEFAULT_FLEET_CACHE_TTL_SECONDS,
        metavar="SECONDS",
        help="how old a fleet read may be before a request starts a new one in the background; 0: "
        f"every request waits for its own (default: {DEFAULT_FLEET_CACHE_TTL_SECONDS:g})",
    )
    fleet.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    fleet.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    fleet.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log verbosity"
    )
    fleet.set_defaults(handler=_fleet)


def _headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or not name.strip().isprintable() or " " in name.strip():
            raise CliError(f"--header {item!r} is not of the form 'NAME: VALUE'", EXIT_USAGE)
        headers[name.strip()] = value.strip()
    return headers


def _fleet(args: argparse.Namespace) -> int:
    import uvicorn

    views = load_object(f"{_VIEWS}:TsdbConfig"), load_object(f"{_VIEWS}:FleetSettings")
    tsdb_config, fleet_settings = views
    token = os.environ.get(TSDB_TOKEN_VARIABLE) or None
    password = os.environ.get(TSDB_PASSWORD_VARIABLE)
    if args.tsdb_user is not None and password is None:
        raise CliError(f"--tsdb-user needs the password in {TSDB_PASSWORD_VARIABLE}", EXIT_USAGE)
    if args.tsdb_user is None and password is not None:
        raise CliError(f"{TSDB_PASSWORD_VARIABLE} is set but --tsdb-user is not", EXIT_USAGE)
    try:
        config = tsdb_config(
            args.prometheus,
            headers=_headers(args.header),
            basic_auth=None if args.tsdb_user is None else (args.tsdb_user, password),
            bearer_token=token,
            timeout_seconds=args.tsdb_timeout,
            verify_tls=not args.insecure_skip_verify,
        )
        settings = fleet_settings(
            lookback_seconds=args.lookback,
            window_seconds=args.window,
            down_after_seconds=args.down_after,
            ignore_labels=("job", "instance", *args.ignore_label),
        )
        app = load_object(FLEET_APP_FACTORY)(
            config,
            settings=settings,
            cache_ttl_seconds=args.cache_ttl,
            token=os.environ.get(_API_TOKEN_VARIABLE) or None,
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"telemetry-otel {__version__}: fleet views from {args.prometheus}\n"
        f"  http://{host}:{args.port}/api/fleet/v1/telemetry\n"
        f"  http://{host}:{args.port}/api/{{agent}}/v1/telemetry",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
