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

import os
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID

__all__ = [
    "ForkAware",
    "ForkHooks",
    "process_instance_id",
    "register_fork_handlers",
    "renew_instance_id",
    "reset_after_fork",
    "zero_sdk_counts",
]


@runtime_checkable
class ForkAware(Protocol):
    """A producer or aggregator holding counts of its own: it starts from zero in a forked child."""

    def reset_after_fork(self) -> None:
        """Forget every count and re-make every lock (called in the child, before any other thread)."""


class ForkHooks(Protocol):
    """What a runtime does around a fork (the runtime's own methods)."""

    def _before_fork(self) -> None: ...

    def _after_fork_in_parent(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


def register_fork_handlers(reference: Callable[[], ForkHooks | None]) -> None:
    """Fork handlers for one runtime, holding it weakly (a runtime that is gone costs a no-op)."""

    def before() -> None:
        telemetry = reference()
        if telemetry is not None:
            telemetry._before_fork()

    def after_in_parent() -> None:
        telemetry = reference()
        if telemetry is not None:
            telemetry._after_fork_in_parent()

    def after_in_child() -> None:
        telemetry = reference()
        if telemetry is not None:
            telemetry._after_fork_in_child()

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


_instance_id: tuple[int, str] | None = None


def process_instance_id() -> str:
    """This process's ``service.instance.id``: a random UUID, new in every process (a forked child
    gets its own). ``OTEL_RESOURCE_ATTRIBUTES`` may set another for the runtime's resource."""
    global _instance_id
    pid = os.getpid()
    if _instance_id is None or _instance_id[0] != pid:
        _instance_id = (pid, str(uuid.uuid4()))
    return _instance_id[1]


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


def reset_after_fork(parts: Sequence[object]) -> None:
    """Call ``reset_after_fork`` on each of ``parts`` that has one (producers, aggregators)."""
    for part in parts:
        if isinstance(part, ForkAware):
            part.reset_after_fork()
