"""What a forked child must not inherit from its parent's runtime: counts, identity, threads, locks.

A pre-fork server (``gunicorn --preload``, or any ``os.fork()``) copies the parent's memory into each
child: every count recorded so far, the ``service.instance.id``, and locks that a parent thread may
have held at the moment of the fork (in the child, no thread will ever release them). Each child
must start as a new instance from zero: otherwise every worker reports the parent's counts once
more, and every worker claims the parent's identity.

:func:`zero_sdk_counts` empties the SDK's aggregation storage in place, so the instruments service
code already holds keep working and count from zero; :func:`renew_instance_id` gives the SDK's
resource the child's own ``service.instance.id``. Both reach into the SDK's storage, which has no
public reset: they are tested against the installed SDK in ``tests/test_fork.py``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID

__all__ = ["ForkAware", "renew_instance_id", "reset_after_fork", "zero_sdk_counts"]


@runtime_checkable
class ForkAware(Protocol):
    """A producer or aggregator holding counts of its own: it starts from zero in a forked child."""

    def reset_after_fork(self) -> None:
        """Forget every count and re-make every lock (called in the child, before any other thread)."""


def zero_sdk_counts(provider: MeterProvider) -> None:
    """Empty every aggregation of ``provider``'s readers and re-make their locks.

    Instruments stay registered; their next measurement starts a new cumulative series whose start
    time is the measurement's (observable instruments report what their callbacks return).
    """
    consumer: Any = provider._measurement_consumer
    consumer._lock = threading.Lock()
    for storage in list(consumer._reader_storages.values()):
        storage._lock = threading.RLock()
        for matches in list(storage._instrument_view_instrument_matches.values()):
            for match in matches:
                match._lock = threading.Lock()
                match._attributes_aggregation = {}
                match._previous_collection_start_nanos = None


def renew_instance_id(provider: MeterProvider, instance_id: str) -> None:
    """Give ``provider``'s resource ``instance_id`` as its ``service.instance.id``."""
    config: Any = provider._sdk_config
    config.resource = config.resource.merge(Resource({SERVICE_INSTANCE_ID: instance_id}))


def reset_after_fork(parts: list[object]) -> None:
    """Call ``reset_after_fork`` on each of ``parts`` that has one (producers, aggregators)."""
    for part in parts:
        if isinstance(part, ForkAware):
            part.reset_after_fork()
