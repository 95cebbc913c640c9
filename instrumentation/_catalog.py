"""Snapshot metrics defined by the catalog: a metric's unit and description live in one place.

Example::

    from telemetry_otel.catalog import load_catalog
    from telemetry_otel.instrumentation import from_catalog

    catalog = load_catalog("catalog.yaml")
    TOKENS_IN = from_catalog(catalog, "llm.tokens.input")   # counter, "{token}", its brief
"""

from __future__ import annotations

from collections.abc import Mapping

from telemetry_otel.catalog import Catalog, Instrument
from telemetry_otel.instrumentation._snapshots import MetricKind, SnapshotMetric

__all__ = ["from_catalog"]

_KINDS: Mapping[Instrument, MetricKind] = {
    "gauge": "gauge",
    "counter": "counter",
    "updowncounter": "updowncounter",
}


def from_catalog(catalog: Catalog, name: str) -> SnapshotMetric:
    """The :class:`SnapshotMetric` of metric ``name`` as ``catalog`` declares it.

    The kind comes from the declared instrument (``counter``, ``updowncounter``,
    ``gauge``), the unit and the description (the ``brief``) from the declaration. A metric the
    catalog does not declare, or declares as a ``histogram`` (a snapshot reports values, not
    recordings), is a ``ValueError`` naming the catalog.
    """
    try:
        definition = catalog.metric(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    kind = _KINDS.get(definition.instrument)
    if kind is None:
        raise ValueError(
            f"metric {name!r} is declared as a {definition.instrument} at {definition.location}; "
            "a snapshot metric is a gauge, counter or updowncounter (record a histogram with an "
            "OTel Histogram instrument instead)"
        )
    return SnapshotMetric(name, kind, definition.unit, definition.brief)
