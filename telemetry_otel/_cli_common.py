"""What every ``telemetry-otel`` command shares: the user-facing error, exit codes, argument types,
loading an application by import string."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "DEMO_FACTORY",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CliError",
    "app_dir_argument",
    "demo_failure_arguments",
    "demo_failures",
    "load_object",
    "seconds",
    "threshold_argument",
    "threshold_overrides",
]

#: Import string of the demo runtime's factory (the core never imports the instrumentation).
DEMO_FACTORY = "telemetry_otel.instrumentation.demo:build_demo"
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed as one line, with an exit code, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more seconds")
    return value


def per_second(text: str) -> float:
    """A positive, finite rate (``--demo-request-rate``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number per second") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number per second")
    return value


def load_object(spec: str, app_dir: str | None = None) -> Any:
    """Import ``module:attribute`` and return the attribute; a clear error names what failed.

    With ``app_dir``, that directory is put first on ``sys.path`` before the import, as uvicorn's
    ``--app-dir`` does (its default is the working directory): a console script, unlike
    ``python -m``, does not have the working directory on the import path.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"{spec!r} is not of the form MODULE:FACTORY", EXIT_USAGE)
    if app_dir is not None:
        directory = os.path.abspath(app_dir)
        if not os.path.isdir(directory):
            raise CliError(f"--app-dir {app_dir!r} is not a directory", EXIT_USAGE)
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {os.path.abspath(app_dir)} first)" if app_dir is not None else ""
        raise CliError(f"cannot import {module_name!r}: {exc}{where}", EXIT_USAGE) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attribute!r}", EXIT_USAGE) from None


def app_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app-dir",
        default=None,
        metavar="DIR",
        help="directory put first on the import path to find --app's module, as uvicorn does "
        "(default: the working directory)",
    )


def threshold_overrides(items: Sequence[str]) -> dict[str, object] | None:
    """``--threshold KEY=VALUE`` overrides: integers and numbers are parsed, anything else stays text."""
    if not items:
        return None
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--threshold {item!r} is not of the form KEY=VALUE", EXIT_USAGE)
        value: object = raw
        for parse in (int, float):
            try:
                value = parse(raw)
                break
            except ValueError:
                continue
        overrides[key.strip()] = value
    return overrides


def threshold_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an alert threshold (repeatable), e.g. --threshold cpu_warn=0.8",
    )


def demo_failure_arguments(parser: argparse.ArgumentParser) -> None:
    """``serve --demo``'s failure switch: make services fail on purpose, to see real alerts."""
    parser.add_argument(
        "--demo-fail",
        action="append",
        default=[],
        metavar="SERVICE",
        help="make this demo service fail on purpose (repeatable): every request errors, a breaker "
        "opens, it reports fail; e.g. --demo-fail llm",
    )
    parser.add_argument(
        "--demo-fail-after",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="start the --demo-fail failures this long after the start (default: 0)",
    )
    parser.add_argument(
        "--demo-fail-for",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="end the --demo-fail failures after this long; the services then recover (default: never)",
    )
    parser.add_argument(
        "--demo-bad-value",
        action="append",
        default=[],
        metavar="SERVICE",
        help="this demo service's snapshot also returns a name it never declared (repeatable): the "
        "value is dropped and counted, and the service shows warn with the problem as its reason",
    )
    parser.add_argument(
        "--demo-request-rate",
        type=per_second,
        default=None,
        metavar="PER_SECOND",
        help="a fixed demo traffic of this many requests per second instead of the random one",
    )


def demo_failures(args: argparse.Namespace) -> dict[str, tuple[float, float | None]]:
    """The ``failures`` argument of the demo factory from ``--demo-fail*``."""
    if args.demo_fail_for is not None and not args.demo_fail_for > 0:
        raise CliError("--demo-fail-for must be more than 0 seconds", EXIT_USAGE)
    return {name: (args.demo_fail_after, args.demo_fail_for) for name in args.demo_fail}
