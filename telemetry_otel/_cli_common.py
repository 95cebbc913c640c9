"""What every ``telemetry-otel`` command shares: the user-facing error, exit codes, argument types."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

__all__ = ["DEMO_FACTORY", "EXIT_FAILURE", "EXIT_USAGE", "CliError", "load_object", "seconds"]

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


def load_object(spec: str) -> Any:
    """Import ``module:attribute`` and return the attribute; a clear error names what failed."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"{spec!r} is not of the form MODULE:FACTORY", EXIT_USAGE)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}", EXIT_USAGE) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attribute!r}", EXIT_USAGE) from None
