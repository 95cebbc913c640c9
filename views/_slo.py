"""Service-level objectives: the SLO file, and the error-budget and burn-rate rules made from it.

An SLO file (YAML) lists objectives per service or bus::

    slos:
      - name: llm-availability
        bus: llm                 # or: service: llm
        objective: 99.5          # percent of requests that succeed
        period: 28d              # optional, default 28d
      - name: llm-latency
        bus: llm
        objective: 95            # percent of requests faster than latency_seconds
        latency_seconds: 0.5     # a bucket boundary of the request duration histogram

Each objective gets error-ratio recording rules over the windows of the SRE workbook's
multi-window, multi-burn-rate alerts (page: 1 h and 5 m above 14.4 times the budget rate, or 6 h and
30 m above 6 times; ticket: 1 d and 2 h above 3 times, or 3 d and 6 h above 1 time), the budget left
over the period, and the two alerts. Errors name ``file:line`` (:class:`SloFileError`).
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass
from typing import Any, Final

from telemetry_otel.catalog import CatalogError
from telemetry_otel.catalog._load import Node, read_documents
from telemetry_otel.formats import prometheus_bucket_bound
from telemetry_otel.views._promql import (
    BUS_LABEL,
    BY_INSTANCE,
    SERVICE_LABEL,
    format_duration,
    parse_duration,
    series,
)
from telemetry_otel.vocabulary import (
    BUS_FAILURES,
    BUS_REQUEST_DURATION,
    BUS_REQUESTS,
    REQUEST_DURATION_BUCKETS,
    SERVICE_ERRORS,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
)

__all__ = ["BURN_RATE_WINDOWS", "SLO", "SloFileError", "load_slo_file", "slo_groups"]

DEFAULT_PERIOD_SECONDS: Final = 28 * 86400.0
#: (action, severity, ((long window s, short window s, burn rate), ...)): the SRE workbook's pairs.
BURN_RATE_WINDOWS: Final = (
    ("page", "critical", ((3600.0, 300.0, 14.4), (21600.0, 1800.0, 6.0))),
    ("ticket", "warning", ((86400.0, 7200.0, 3.0), (259200.0, 21600.0, 1.0))),
)
_KEYS: Final = ("name", "service", "bus", "objective", "latency_seconds", "period", "description")
_NAME = re.compile(r"[a-zA-Z0-9_.:-]+")
ALERT_NAME: Final = "TelemetryOtelErrorBudgetBurn"


class SloFileError(ValueError):
    """An SLO file that cannot be used; ``problems`` are ``file:line: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SLO:
    """One objective: ``objective`` (a fraction) of the requests of a service or bus succeed, or are
    faster than ``latency_seconds`` when that is set, over ``period_seconds``."""

    name: str
    owner_kind: str  # "service" or "bus"
    owner: str
    objective: float
    period_seconds: float = DEFAULT_PERIOD_SECONDS
    latency_seconds: float | None = None
    description: str = ""

    @property
    def budget(self) -> float:
        """The error budget: the fraction of requests that may fail (or be slow)."""
        return 1.0 - self.objective


def load_slo_file(path: str | os.PathLike[str]) -> list[SLO]:
    """The objectives of the SLO file ``path``; :class:`SloFileError` names every problem's line."""
    shown = os.fspath(path)
    if not os.path.isfile(path):
        raise SloFileError([f"{shown}: no such SLO file"])
    try:
        [document] = read_documents(path)
    except CatalogError as exc:  # unreadable, not UTF-8, not YAML: the message names file:line
        raise SloFileError([str(exc)]) from None
    problems = [f"{finding.location}: {finding.message}" for finding in document.findings]
    root = document.root
    top = root.mapping if root is not None else None
    entries = top.get("slos") if top is not None else None
    if top is None or entries is None or entries.sequence is None:
        where = root.location if root is not None else f"{shown}:1"
        raise SloFileError([*problems, f"{where}: expected a map with a list 'slos' of objectives"])
    problems += [
        f"{node.location}: unknown key {key!r}; allowed: slos" for key, node in top.items() if key != "slos"
    ]
    if not entries.sequence:
        problems.append(f"{entries.location}: no objectives: 'slos' is empty")
    slos: list[SLO] = []
    for entry in entries.sequence:
        found = _read_slo(entry, problems)
        if found is not None:
            if any(slo.name == found.name for slo in slos):
                problems.append(f"{entry.location}: duplicate SLO name {found.name!r}")
            slos.append(found)
    if problems:
        raise SloFileError(problems)
    return slos


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _read_slo(node: Node, problems: list[str]) -> SLO | None:
    """One objective, or None with its problems (each at its own line) added to ``problems``."""
    fields = node.mapping
    if fields is None:
        problems.append(f"{node.location}: an objective is a map (name, service or bus, objective, ...)")
        return None
    before = len(problems)

    def problem(key: str, message: str) -> None:
        problems.append(f"{fields.get(key, node).location}: {message}")

    for key in fields:
        if key not in _KEYS:
            problem(key, f"unknown key {key!r}; allowed: {', '.join(_KEYS)}")
    name = fields["name"].text if "name" in fields else None
    if name is None or not _NAME.fullmatch(name):
        problem("name", "'name' must be given: letters, digits, '_', '.', ':' or '-'")
    owners = [key for key in ("service", "bus") if key in fields]
    owner = fields[owners[0]].text if len(owners) == 1 else None
    if len(owners) != 1:
        problem(owners[-1] if owners else "name", "give exactly one of 'service' or 'bus'")
    elif not owner:
        problem(owners[0], f"'{owners[0]}' must be a name")
    objective = _number(fields["objective"].value) if "objective" in fields else None
    if objective is None or not 0 < objective < 100:
        shown = fields["objective"].value if "objective" in fields else None
        problem("objective", f"'objective' must be a percentage in (0, 100), not {shown!r}")
    period = DEFAULT_PERIOD_SECONDS
    if "period" in fields:
        try:
            period = parse_duration(str(fields["period"].value))
            if period <= 0:
                raise ValueError("a period must be longer than 0")
        except ValueError as exc:
            problem("period", f"'period': {exc}")
    latency = _number(fields["latency_seconds"].value) if "latency_seconds" in fields else None
    if "latency_seconds" in fields:
        if latency is None or latency <= 0:
            problem("latency_seconds", f"'latency_seconds' must be a positive number of seconds, not "
                    f"{fields['latency_seconds'].value!r}")  # fmt: skip
        elif latency not in REQUEST_DURATION_BUCKETS:
            problem("latency_seconds", _not_a_boundary(latency, owners[0] if owners else "service"))
    description = fields["description"].value if "description" in fields else ""
    if len(problems) > before or name is None or owner is None or objective is None:
        return None
    return SLO(name, owners[0], owner, objective / 100.0, period, latency, str(description or ""))


def _not_a_boundary(latency: float, owner_kind: str) -> str:
    bounds = REQUEST_DURATION_BUCKETS
    index = bisect.bisect(bounds, latency)
    near = [f"{bound:g}" for bound in bounds[max(0, index - 1) : index + 1]]
    metric = SERVICE_REQUEST_DURATION if owner_kind == "service" else BUS_REQUEST_DURATION
    every = ", ".join(f"{bound:g}" for bound in bounds)
    return (
        f"'latency_seconds' {latency:g} is not a bucket boundary of {metric}: the share of faster requests "
        f"is only known at a boundary; nearest: {' and '.join(near)} (all: {every})"
    )


# -- rules ----------------------------------------------------------------------------------------------
SLI_ERROR: Final = "slo:telemetry_otel_sli_error:ratio_rate"
BUDGET_REMAINING: Final = "slo:telemetry_otel_error_budget:remaining"
OBJECTIVE: Final = "slo:telemetry_otel_objective:ratio"


def _error_ratio(slo: SLO, window: str) -> str:
    """The share of bad requests of ``slo``'s owner over ``window``, per runtime (job, instance)."""
    if slo.owner_kind == "service":
        selector = f'{{{SERVICE_LABEL}="{slo.owner}"}}'
        requests, errors, duration = SERVICE_REQUESTS, SERVICE_ERRORS, SERVICE_REQUEST_DURATION
    else:
        selector = f'{{{BUS_LABEL}="{slo.owner}"}}'
        requests, errors, duration = BUS_REQUESTS, BUS_FAILURES, BUS_REQUEST_DURATION

    def rate(name: str, matcher: str = selector) -> str:
        return f"sum by ({BY_INSTANCE}) (rate({name}{matcher}[{window}]))"

    if slo.latency_seconds is None:
        return f"{rate(series(errors))} / {rate(series(requests))}"
    histogram = series(duration)
    fast = selector[:-1] + f',le="{prometheus_bucket_bound(slo.latency_seconds)}"}}'
    return f"1 - {rate(histogram + '_bucket', fast)} / {rate(histogram + '_count')}"


def _windows() -> list[float]:
    return sorted({seconds for _, _, pairs in BURN_RATE_WINDOWS for pair in pairs for seconds in pair[:2]})


def slo_groups(
    slos: list[SLO],
    *,
    window_scale: float = 1.0,
    runbook_url: str,
) -> list[dict[str, Any]]:
    """One rule group per SLO: error ratios over the burn-rate windows and the period, the budget left,
    the objective, and the page and ticket alerts. ``window_scale`` shrinks every window (and the
    period) for tests and demos: 1/60 makes 1 h a minute. The rules keep the names of the nominal
    windows (``...:ratio_rate1h``) whatever the scale, so dashboards read the same names."""
    groups = []
    for slo in slos:
        labels = {"slo": slo.name, slo.owner_kind: slo.owner}
        windows = {format_duration(s): s * window_scale for s in (*_windows(), slo.period_seconds)}
        rules: list[dict[str, Any]] = [
            {
                "record": SLI_ERROR + name,
                "expr": _error_ratio(slo, format_duration(seconds)),
                "labels": labels,
            }
            for name, seconds in windows.items()
        ]
        period = format_duration(slo.period_seconds)
        rules.append({"record": OBJECTIVE, "expr": f"vector({slo.objective:.10g})", "labels": labels})
        rules.append(
            {
                "record": BUDGET_REMAINING,
                "expr": f'1 - {SLI_ERROR}{period}{{slo="{slo.name}"}} / {slo.budget:.10g}',
                "labels": labels,
            }
        )
        kind = "succeed" if slo.latency_seconds is None else f"be faster than {slo.latency_seconds:g} s"
        about = f" ({slo.description.rstrip('.')})" if slo.description else ""
        for action, severity, pairs in BURN_RATE_WINDOWS:
            conditions = []
            for long, short, burn in pairs:
                limit = f"{burn * slo.budget:.10g}"
                conditions.append(
                    f'({SLI_ERROR}{format_duration(long)}{{slo="{slo.name}"}} > {limit} and '
                    f'{SLI_ERROR}{format_duration(short)}{{slo="{slo.name}"}} > {limit})'
                )
            rates = " or ".join(f"{burn:g}x" for _, _, burn in pairs)
            rules.append(
                {
                    "alert": ALERT_NAME,
                    "expr": " or ".join(conditions),
                    "labels": {**labels, "severity": severity, "action": action},
                    "annotations": {
                        "summary": f"SLO {slo.name} burns its error budget at {rates} ({action})",
                        "description": f"{slo.objective * 100:g}% of the requests of {slo.owner_kind} "
                        f"{slo.owner} must {kind} over {format_duration(slo.period_seconds)}{about}; "
                        f"the error ratio is at {{{{ $value | humanizePercentage }}}}, "
                        f"burning the budget too fast ({action}).",
                        "runbook_url": f"{runbook_url}#{ALERT_NAME.lower()}",
                    },
                }
            )
        groups.append({"name": f"telemetry-otel.slo.{slo.name}", "rules": rules})
    return groups
