"""What the app renders from one collection, made once per collection and query and then reused.

A :class:`Renderings` holds the newest served collection's models (one per filter), view documents,
encoded view bodies and ``/metrics`` bodies, and forgets them all when a newer collection is served.
Everything a response adds per request (its age, ``generated_at``) is added by the app, never cached.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from typing import Any

from telemetry_otel import CachedCollection, Collection
from telemetry_otel.formats import encode_exposition, encode_influx, negotiate_exposition
from telemetry_otel.views._build import build_model
from telemetry_otel.views._formats import ENCODERS
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._query import INFLUX_PRECISIONS, InfluxPrecision
from telemetry_otel.views._render import RenderedView, render_view, view_metrics
from telemetry_otel.views._state import Model
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["Renderings"]

_Filter = tuple[str | None, str | None]
_PRECISIONS: dict[str, InfluxPrecision] = {unit: unit for unit in INFLUX_PRECISIONS}


class Renderings:
    """Models, documents and bodies of the newest served collection, each made at most once."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._collection: Collection | None = None
        self._models: dict[_Filter, Model] = {}
        self._views: dict[Hashable, tuple[ViewInputs, RenderedView]] = {}
        self._bodies: dict[Hashable, bytes] = {}
        self._scrapes: dict[Hashable, tuple[bytes, ...]] = {}

    def inputs(self, served: CachedCollection, category: str | None, service: str | None) -> ViewInputs:
        """The view inputs of ``served`` for a filter: the collection as of its own read."""
        collection = served.collection
        return ViewInputs(
            collection=collection,
            previous=served.previous,
            thresholds=self.thresholds,
            now_unix_nano=collection.time_unix_nano,
            category=category,
            service=service,
        )

    def document(
        self, served: CachedCollection, view: str, category: str | None, service: str | None
    ) -> dict[str, Any]:
        """The JSON document of ``view`` for the filter; the filter's model is built once."""
        return self._rendered(served, view, category, service)[1].document

    def view_body(
        self,
        served: CachedCollection,
        view: str,
        encoding: str,
        category: str | None,
        service: str | None,
        *,
        precision: str = "ns",
    ) -> bytes:
        """A view's series in one of the metric formats (``ENCODERS``); ``precision`` is the timestamp
        unit of ``influxdb``."""
        self._switch(served.collection)
        key = ("view", view, encoding, category, service, precision)
        body = self._bodies.get(key)
        if body is None:
            inputs, rendered = self._rendered(served, view, category, service)
            data = view_metrics(inputs, rendered)
            if encoding == "influxdb":
                text = encode_influx(data, precision=_PRECISIONS[precision])
            else:
                text = ENCODERS[encoding](data)
            body = text.encode("utf-8")
            self._bodies[key] = body
        return body

    def metrics_body(
        self, served: CachedCollection, accept: str | None, gzipped: bool
    ) -> tuple[tuple[bytes, ...], str]:
        """The ``/metrics`` body for an ``Accept`` header, gzipped or not, as chunks (never held whole
        twice), and its content type."""
        self._switch(served.collection)
        _, content_type = negotiate_exposition(accept)
        key = ("metrics", content_type, gzipped)
        body = self._scrapes.get(key)
        if body is None:
            # gzip compresses the plain body when one is cached, else a plain body made for it. Every
            # sample names its agent, so one TSDB can hold a fleet (docs/fleet.md): the encoder
            # writes the label, no point is copied for it.
            plain = self._scrapes.get(("metrics", content_type, False)) if gzipped else None
            body = plain or encode_exposition(served.collection.metrics, content_type, agent_label=True)
            if gzipped:
                compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
                body = (b"".join([*map(compressor.compress, body), compressor.flush()]),)
            self._scrapes[key] = body
        return body, content_type

    def model(self, served: CachedCollection, category: str | None, service: str | None) -> Model:
        """The typed model of ``served`` for a filter, built once per collection and filter."""
        self._switch(served.collection)
        return self._model(self.inputs(served, category, service))

    def _rendered(
        self, served: CachedCollection, view: str, category: str | None, service: str | None
    ) -> tuple[ViewInputs, RenderedView]:
        """``view`` rendered once per collection and filter: its JSON document and metric formats
        share it."""
        self._switch(served.collection)
        key = (view, category, service)
        found = self._views.get(key)
        if found is None:
            inputs = self.inputs(served, category, service)
            found = (inputs, render_view(view, inputs, None if view == "detailed" else self._model(inputs)))
            self._views[key] = found
        return found

    def _model(self, inputs: ViewInputs) -> Model:
        key = (inputs.category, inputs.service)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build_model(inputs)
        return model

    def _switch(self, collection: Collection) -> None:
        if collection is not self._collection:
            self._collection, self._models, self._views, self._bodies = collection, {}, {}, {}
            self._scrapes = {}
