"""What a view is rendered from: one collection, its predecessor, thresholds and a filter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telemetry_otel import Collection, ComponentRecord
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["ViewInputs"]


@dataclass(frozen=True)
class ViewInputs:
    """Everything a view is rendered from: one collection, its predecessor, thresholds and a filter.

    The components and bus membership come from the collection itself, as they stood in its cycle.
    """

    collection: Collection
    previous: Collection | None
    thresholds: Thresholds
    now_unix_nano: int
    category: str | None = None
    service: str | None = None

    @property
    def components(self) -> Sequence[ComponentRecord]:
        """Every component of the collection's cycle, in registration order."""
        return self.collection.components

    @property
    def buses(self) -> Mapping[str, Mapping[str, str]]:
        """Bus name -> (provider name -> component name), as in the collection's cycle."""
        return self.collection.buses
