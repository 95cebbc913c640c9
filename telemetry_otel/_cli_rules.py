"""``telemetry-otel rules``: write the Prometheus rule file of the views' thresholds and an SLO file.

The generator belongs to the views (it reads their ``Thresholds``); the core never imports the views
statically, so it is loaded by import string, as ``serve`` loads the app factory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from telemetry_otel._cli_common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    load_object,
    threshold_argument,
    threshold_overrides,
)

__all__ = ["RULES_FUNCTION", "add_rules_command"]

#: Import string of the rule file generator (``telemetry_otel.views.prometheus_rules``).
RULES_FUNCTION = "telemetry_otel.views:prometheus_rules"


def add_rules_command(commands: Any) -> None:
    rules = commands.add_parser(
        "rules",
        help="write Prometheus alerting and recording rules (thresholds, and SLOs from a file)",
        description="Write a Prometheus rule file generated from the same thresholds the views use "
        "(defaults and --threshold overrides) and, with --slo, error-budget and burn-rate rules. "
        "An invalid SLO file is reported as file:line errors with exit status 1.",
    )
    threshold_argument(rules)
    rules.add_argument(
        "--for",
        dest="for_duration",
        default=None,
        metavar="DURATION",
        help="how long every threshold condition must hold before its alert fires, e.g. 30s "
        "(default: per alert, 1m to 5m; see docs/alerts.md)",
    )
    rules.add_argument(
        "--rate-window",
        default="5m",
        metavar="DURATION",
        help="window of the process CPU rate and the dashboards' error ratio (default: 5m)",
    )
    rules.add_argument("--slo", default=None, metavar="FILE", help="SLO file (YAML, see docs/alerts.md)")
    rules.add_argument(
        "--slo-window-scale",
        type=_scale,
        default=1.0,
        metavar="FACTOR",
        help="multiply every SLO window and period by FACTOR, for tests and demos (e.g. 0.001 makes the "
        "1h window 3.6s; default: 1)",
    )
    rules.add_argument(
        "--runbook-url",
        default=None,
        metavar="URL",
        help="address of the alerts page the runbook links point to (default: docs/alerts.md)",
    )
    rules.add_argument("--output", "-o", default="-", metavar="FILE", help="where to write (default: stdout)")
    rules.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"], help="log verbosity"
    )
    rules.set_defaults(handler=_rules)


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _rules(args: argparse.Namespace) -> int:
    generate = load_object(RULES_FUNCTION)
    options: dict[str, Any] = {
        "for_duration": args.for_duration,
        "rate_window": args.rate_window,
        "slo_file": args.slo,
        "slo_window_scale": args.slo_window_scale,
    }
    if args.runbook_url is not None:
        options["runbook_url"] = args.runbook_url
    try:
        text = generate(threshold_overrides(args.threshold), **options)
    except ValueError as exc:
        problems = getattr(exc, "problems", None)
        if problems is None:  # a bad threshold or duration: a usage error
            raise CliError(str(exc), EXIT_USAGE) from None
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) in the SLO file; nothing written", file=sys.stderr)
        return EXIT_FAILURE
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    print(f"telemetry-otel: wrote {args.output}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a reloading Prometheus never reads half a file)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, delete=False) as handle:
            handle.write(text)
        os.replace(handle.name, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
