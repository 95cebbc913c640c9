"""The series that let ``/metrics`` alone describe a collection: components, reported health, outcomes.

A time-series database that scrapes ``/metrics`` holds everything a fleet view needs to rebuild a
:class:`~telemetry_otel.Collection` (``docs/fleet.md``): per component, ``telemetry.component.info``
(its kind, category and whether it has a snapshot function), ``telemetry.component.bus`` (one series
per bus membership), ``telemetry.component.health`` (the reported status as a state set, absent
when nothing was reported) with ``telemetry.component.health.timestamp`` (when it was reported), and per
component with a snapshot function ``telemetry.collection.outcome`` (ok, error, timeout as a state
set) with ``telemetry.collection.snapshot.duration``; and ``telemetry.collection.timestamp``, the Unix
time of the collection's read. Values come from the records frozen in the cycle, so they agree with
the cycle's own metrics.

The texts a view shows as reasons are ``telemetry.component.reason.timestamp``, info-style: one
series per component and source (``reason.source``: ``health`` for the reported reason,
``snapshot.error``, ``snapshot.problems`` and ``snapshot.unknown``, lists joined by newlines) with
the text as ``reason.text`` (the health's is there for every report, empty without a reason; the
others only when they have a text), normalised by :func:`reason_text` (hex addresses and runs of
five or more digits masked, at most :data:`REASON_TEXT_MAX_CHARS` characters, a longer one cut and
ending with an ellipsis), and at most :data:`REASON_TEXTS_PER_SOURCE` distinct texts per component
and source in a process's life (a further new text is :data:`REASON_TEXTS_EXCEEDED`): a TSDB holds
a bounded number of reason series per component, whatever its errors say. Its value is the collection's Unix
time, not 1: a text that changes makes a new series, and a reader of older samples (a TSDB's
``last_over_time``) keeps only those whose value is the newest collection's time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import get_args

from opentelemetry.sdk.metrics.export import Gauge, Metric, NumberDataPoint

from telemetry_otel._collection import ComponentOutcome, ComponentRecord, Outcome
from telemetry_otel._components import HEALTH_STATUSES
from telemetry_otel.vocabulary import (
    BUS_NAME,
    BUS_PROVIDER,
    COLLECTION_OUTCOME,
    COMPONENT_KIND,
    COMPONENT_SNAPSHOT,
    HEALTH_STATUS,
    REASON_SOURCE,
    REASON_TEXT,
    REASON_TEXT_MAX_CHARS,
    SERVICE_CATEGORY,
    SERVICE_NAME,
    TELEMETRY_COLLECTION_OUTCOME,
    TELEMETRY_COLLECTION_SNAPSHOT_DURATION,
    TELEMETRY_COLLECTION_TIMESTAMP,
    TELEMETRY_COMPONENT_BUS,
    TELEMETRY_COMPONENT_HEALTH,
    TELEMETRY_COMPONENT_HEALTH_TIMESTAMP,
    TELEMETRY_COMPONENT_INFO,
    TELEMETRY_COMPONENT_REASON_TIMESTAMP,
)

__all__ = [
    "REASON_SOURCES",
    "REASON_TEXTS_EXCEEDED",
    "REASON_TEXTS_PER_SOURCE",
    "SNAPSHOT_OUTCOMES",
    "ReasonTextsSeen",
    "component_series",
    "reason_text",
]

#: The sources of ``telemetry.component.reason.timestamp``, in the order a component's are written.
REASON_SOURCES = ("health", "snapshot.error", "snapshot.problems", "snapshot.unknown")

#: The outcomes of a snapshot call, as ``telemetry.collection.outcome`` states (``none`` is not one:
#: a component without a snapshot function has no outcome series).
SNAPSHOT_OUTCOMES: tuple[Outcome, ...] = tuple(o for o in get_args(Outcome) if o != "none")


#: What changes between two raises of the same error: memory addresses (``<X object at 0x7f3a...>``)
#: and runs of five or more digits (ids, large counts, timestamps); shorter numbers (a timeout's
#: ``2000 ms``, an HTTP status) stay readable, and :data:`REASON_TEXTS_PER_SOURCE` bounds the rest.
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_LONG_DIGITS = re.compile(r"[0-9]{5,}")


#: Distinct ``reason.text`` values one component and source may write in a process's life.
REASON_TEXTS_PER_SOURCE = 16
#: The ``reason.text`` of a new text past :data:`REASON_TEXTS_PER_SOURCE` (the views keep the full one).
REASON_TEXTS_EXCEEDED = (
    f"more than {REASON_TEXTS_PER_SOURCE} distinct reasons: this one is only on the agent's own endpoint"
)
#: The texts written so far, by (component, source): what :data:`REASON_TEXTS_PER_SOURCE` counts.
ReasonTextsSeen = dict[tuple[str, str], set[str]]


def reason_text(text: str) -> str:
    """``text`` as a ``reason.text`` label carries it: hex addresses masked (``0x…``), runs of five
    or more digits masked (``…``), at most :data:`REASON_TEXT_MAX_CHARS` characters.

    A label that changes is a new series in a TSDB: the masking keeps the same error the same text
    from one collection to the next. The agent's own views keep the full text.
    """
    text = _LONG_DIGITS.sub("\u2026", _HEX_ADDRESS.sub("0x\u2026", text))
    if len(text) <= REASON_TEXT_MAX_CHARS:
        return text
    return text[: REASON_TEXT_MAX_CHARS - 1] + "\u2026"


def _reasons(
    record: ComponentRecord, done: ComponentOutcome | None, seen: ReasonTextsSeen | None
) -> dict[str, str]:
    """A component's reason texts by source: the reported health's whenever there is one (empty
    when it gave none, as the health state set is there for every report), the others when not empty;
    a new text past the bound of its component and source in ``seen`` is :data:`REASON_TEXTS_EXCEEDED`."""
    found = _texts(record, done)
    if seen is not None:
        for source, text in found.items():
            known = seen.setdefault((record.name, source), set())
            if text not in known:
                if len(known) < REASON_TEXTS_PER_SOURCE:
                    known.add(text)
                else:
                    found[source] = REASON_TEXTS_EXCEEDED
    return found


def _texts(record: ComponentRecord, done: ComponentOutcome | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if record.health is not None:
        found["health"] = reason_text(record.health.reason or "")
    if done is not None:
        for source, text in (
            ("snapshot.error", done.error or ""),
            ("snapshot.problems", "\n".join(done.problems)),
            ("snapshot.unknown", "\n".join(done.unknown)),
        ):
            if text:
                found[source] = reason_text(text)
    return found


def component_series(
    records: Sequence[ComponentRecord],
    buses: Mapping[str, Mapping[str, str]],
    outcomes: Mapping[str, ComponentOutcome],
    now: int,
    seen: ReasonTextsSeen | None = None,
) -> list[Metric]:
    """The component, health and outcome series of one collection as of ``now`` (ns); ``seen``
    (updated) bounds the reason texts per component and source, none when not given."""
    info, membership, health, health_time, outcome, duration = [], [], [], [], [], []
    reasons: list[NumberDataPoint] = []
    collected = now / 1e9
    for record in records:
        name = record.name
        attributes: dict[str, str] = {SERVICE_NAME: name, COMPONENT_KIND: record.kind}
        if record.category is not None:
            attributes[SERVICE_CATEGORY] = record.category
        attributes[COMPONENT_SNAPSHOT] = "true" if record.has_snapshot else "false"
        info.append(NumberDataPoint(attributes, now, now, 1))
        report = record.health
        if report is not None:
            for status in HEALTH_STATUSES:
                value = 1 if status == report.status else 0
                health.append(NumberDataPoint({SERVICE_NAME: name, HEALTH_STATUS: status}, now, now, value))
            health_time.append(NumberDataPoint({SERVICE_NAME: name}, now, now, report.time_unix_nano / 1e9))
        done = outcomes.get(name)
        for source, text in _reasons(record, done, seen).items():
            point = {SERVICE_NAME: name, REASON_SOURCE: source, REASON_TEXT: text}
            reasons.append(NumberDataPoint(point, now, now, collected))
        if done is not None and done.outcome != "none":
            for state in SNAPSHOT_OUTCOMES:
                value = 1 if state == done.outcome else 0
                point = {SERVICE_NAME: name, COLLECTION_OUTCOME: state}
                outcome.append(NumberDataPoint(point, now, now, value))
            duration.append(NumberDataPoint({SERVICE_NAME: name}, now, now, done.duration_seconds))
    for bus, providers in buses.items():
        for provider, component in providers.items():
            attributes = {SERVICE_NAME: component, BUS_NAME: bus, BUS_PROVIDER: provider}
            membership.append(NumberDataPoint(attributes, now, now, 1))
    metrics = [
        Metric(
            TELEMETRY_COMPONENT_INFO,
            "A component of the runtime (value 1): its kind, category and whether it has a snapshot.",
            "{component}",
            Gauge(info),
        ),
        Metric(
            TELEMETRY_COMPONENT_BUS,
            "A component's membership of a bus as one of its providers (value 1).",
            "{membership}",
            Gauge(membership),
        ),
        Metric(
            TELEMETRY_COMPONENT_HEALTH,
            "The health a component reported: 1 for its current health.status, 0 for the others.",
            "{status}",
            Gauge(health),
        ),
        Metric(
            TELEMETRY_COMPONENT_HEALTH_TIMESTAMP,
            "When the component reported its current health (Unix time).",
            "s",
            Gauge(health_time),
        ),
        Metric(
            TELEMETRY_COLLECTION_OUTCOME,
            "How the component's snapshot went in the last collection: 1 for its outcome, 0 for the others.",
            "{status}",
            Gauge(outcome),
        ),
        Metric(
            TELEMETRY_COLLECTION_SNAPSHOT_DURATION,
            "Duration of the component's snapshot call in the last collection.",
            "s",
            Gauge(duration),
        ),
        Metric(
            TELEMETRY_COMPONENT_REASON_TIMESTAMP,
            "A reason text of the component in this collection (reason.source, reason.text); "
            "the value is the collection's Unix time.",
            "s",
            Gauge(reasons),
        ),
        Metric(
            TELEMETRY_COLLECTION_TIMESTAMP,
            "When the collection read its metrics (Unix time).",
            "s",
            Gauge([NumberDataPoint({}, now, now, collected)]),
        ),
    ]
    return [metric for metric in metrics if metric.data.data_points]
