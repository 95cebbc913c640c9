"""The ``catalog check`` and ``coverage`` commands of ``telemetry-otel`` (see ``docs/catalog.md``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._cli_common import (
    DEMO_FACTORY,
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    app_dir_argument,
    load_object,
    seconds,
)
from telemetry_otel._config import ConfigurationError
from telemetry_otel._setup import setup_telemetry
from telemetry_otel.catalog import (
    Catalog,
    CatalogError,
    compare,
    coverage_json,
    demo_catalog,
    load_catalog,
    next_json,
    render_check,
    render_coverage,
    render_next,
    render_todo,
    todo_json,
)

__all__ = ["COVERAGE_AGENT", "COVERAGE_STEPS", "add_catalog_commands"]

#: Resource ``service.name`` of the runtime that ``coverage`` runs.
COVERAGE_AGENT = "telemetry-otel-coverage"
#: Demo steps ``coverage`` runs by default: every demo metric appears within the first one.
COVERAGE_STEPS = 40


def add_catalog_commands(commands: Any) -> None:
    """Add ``catalog check`` and ``coverage`` to the CLI's subcommands."""
    _catalog_parser(commands)
    _coverage_parser(commands)


def _catalog_parser(commands: Any) -> None:
    catalog = commands.add_parser("catalog", help="work with a metric catalog (see docs/catalog.md)")
    actions = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a catalog (OTel names, UCUM units, instruments, attributes, owners, priorities); "
        "exit 1 on any violation",
    )
    check.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="catalog files or directories of *.yaml files, read as one catalog "
        "(default: the demo runtime's catalog)",
    )
    check.set_defaults(handler=_catalog_check, log_level="warning")


def _coverage_parser(commands: Any) -> None:
    coverage = commands.add_parser(
        "coverage",
        help="run the demo (or --app) once and compare the metrics it emits with a catalog",
        description="Run the demo runtime (or --app) for --steps steps, collect once, and compare what "
        "it emits with the catalog. Exit 0 when there is no conformance finding (undeclared metric, "
        "unit, instrument, attribute or owner) and, with --fail-under, no coverage below it; 1 "
        "otherwise; 2 on a usage error.",
    )
    coverage.add_argument(
        "action",
        nargs="?",
        choices=("todo", "next"),
        help="todo: list the missing metrics by priority; next: name the highest-priority one "
        "(default: the full report)",
    )
    coverage.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="PATH",
        help="catalog file or directory (repeatable; default: the demo runtime's catalog)",
    )
    coverage.add_argument(
        "--app",
        metavar="MODULE:FACTORY",
        help="measure your runtime instead of the demo: FACTORY(telemetry) registers its services and "
        "may return an object with step() (called --steps times) or an async run() (run for "
        "--run-seconds), and close()",
    )
    app_dir_argument(coverage)
    coverage.add_argument("--json", action="store_true", help="print JSON instead of text")
    coverage.add_argument(
        "--fail-under",
        type=_percent,
        default=None,
        metavar="PERCENT",
        help="exit 1 when the coverage overall or of any service, bus or component is below PERCENT",
    )
    coverage.add_argument(
        "--seed", type=int, default=None, help="seed of the demo simulation (default: the demo's own)"
    )
    coverage.add_argument(
        "--steps",
        type=_steps,
        default=COVERAGE_STEPS,
        metavar="N",
        help=f"simulation steps before the collection (default: {COVERAGE_STEPS})",
    )
    coverage.add_argument(
        "--run-seconds",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="how long to let an --app runtime's async run() go before the collection (default: 1)",
    )
    coverage.set_defaults(handler=_coverage, log_level="warning")


def _percent(text: str) -> float:
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (0-100)") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (0-100)")
    return value


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of steps") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more steps")
    return value


def _read_catalog(paths: Sequence[str]) -> Catalog:
    try:
        return load_catalog(*paths) if paths else demo_catalog()
    except CatalogError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _catalog_check(args: argparse.Namespace) -> int:
    catalog = _read_catalog(args.paths)
    print(render_check(catalog))
    return 0 if catalog.ok else EXIT_FAILURE


def _coverage(args: argparse.Namespace) -> int:
    catalog = _read_catalog(args.catalog)
    if not catalog.ok:
        print(render_check(catalog), file=sys.stderr)
        raise CliError("the catalog has violations: fix them first (telemetry-otel catalog check)")
    data, source = _emitted(args)
    report = compare(catalog, data)
    fail_under = args.fail_under
    if args.action == "todo":
        output = json.dumps(todo_json(report), indent=2) if args.json else render_todo(report)
    elif args.action == "next":
        output = json.dumps(next_json(report), indent=2) if args.json else render_next(report)
    elif args.json:
        output = json.dumps(coverage_json(report, source=source, fail_under=fail_under), indent=2)
    else:
        output = render_coverage(report, source=source, fail_under=fail_under)
    print(output)
    passed = report.passed(fail_under)
    if args.action is not None and not passed:
        reasons = [f"{len(report.violations)} conformance finding(s)"] if report.violations else []
        if fail_under is not None and report.below(fail_under):
            reasons.append(f"coverage below --fail-under {fail_under:g} %")
        print(
            f"telemetry-otel: {' and '.join(reasons)} (telemetry-otel coverage shows them)", file=sys.stderr
        )
    return 0 if passed else EXIT_FAILURE


def _emitted(args: argparse.Namespace) -> tuple[MetricsData, str]:
    """Run the demo (or ``--app``) on a fresh runtime and return one collection's metrics."""
    try:
        telemetry = setup_telemetry(
            service_name=COVERAGE_AGENT, exporters=[], disabled=False, prometheus_server=False
        )
    except ConfigurationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        if args.app:
            factory = load_object(args.app, args.app_dir or ".")
            if not callable(factory):
                raise CliError(f"{args.app!r} is not callable", EXIT_USAGE)
            label = f"application {args.app}"
            runtime = _call(label, factory, telemetry)
        else:
            seed = "default seed" if args.seed is None else f"seed {args.seed}"
            label = f"the demo runtime ({seed})"
            runtime = load_object(DEMO_FACTORY)(telemetry, seed=args.seed)
        try:
            driven = _drive(label, runtime, args.steps, args.run_seconds)
            collection = telemetry.cycle.collect_now(telemetry.cycle.longest_cycle_seconds + 1.0)
        finally:
            close = getattr(runtime, "close", None)
            if callable(close):
                _call(label, close)
    finally:
        telemetry.shutdown()
    return collection.metrics, f"{label}, {driven}, one collection"


def _drive(label: str, runtime: object, steps: int, run_seconds: float) -> str:
    """Advance ``runtime``: ``step()`` ``steps`` times, or its async ``run()`` for ``run_seconds``."""
    step = getattr(runtime, "step", None)
    if callable(step):
        for _ in range(steps):
            _call(label, step)
        return f"{steps} steps"
    run = getattr(runtime, "run", None)
    if run is not None and inspect.iscoroutinefunction(run):
        _call(label, lambda: asyncio.run(_run_for(run, run_seconds)))
        return f"run() for {run_seconds:g} s"
    return "no step() nor run()"


async def _run_for(run: Callable[[], Coroutine[Any, Any, None]], seconds: float) -> None:
    task = asyncio.ensure_future(run())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()  # it ended early: re-raise what it raised
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _call(label: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except CliError:
        raise
    except Exception as exc:
        raise CliError(f"{label} failed: {type(exc).__name__}: {exc}") from None
