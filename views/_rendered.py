"""What the app renders from one collection, made once per collection and query and then reused.

A :class:`Renderings` holds the newest served collection's models (one per filter), view documents,
encoded view bodies and ``/metrics`` bodies, and forgets them all when a newer collection is served.
Everything a response adds per request (its age, ``generated_at``) is added by the app, never cached.
"""

from __future__ import annotations

import gzip
from collections.abc import Hashable
from typing import Any, Literal

from telemetry_otel import CachedCollection, Collection
from telemetry_otel.formats import encode_influx, negotiate_exposition
from telemetry_otel.views._build import build_model
from telemetry_otel.views._formats import ENCODERS
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._render import render_view, view_metrics
from telemetry_otel.views._state import Model
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["Renderings"]

_Filter = tuple[str | None, str | None]
_PRECISIONS: dict[str, Literal["s", "ms", "us", "ns"]] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}


class Renderings:
    """Models, documents and bodies of the newest served collection, each made at most once."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._collection: Collection | None = None
        self._models: dict[_Filter, Model] = {}
        self._documents: dict[Hashable, dict[str, Any]] = {}
        self._bodies: dict[Hashable, bytes] = {}

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
        self._switch(served.collection)
        key = (view, category, service)
        document = self._documents.get(key)
        if document is None:
            inputs = self.inputs(served, category, service)
            document = render_view(view, inputs, None if view == "detailed" else self._model(inputs)).document
            self._documents[key] = document
        return document

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
            inputs = self.inputs(served, category, service)
            rendered = render_view(view, inputs, None if view == "detailed" else self._model(inputs))
            data = view_metrics(inputs, rendered)
            if encoding == "influxdb":
                text = encode_influx(data, precision=_PRECISIONS[precision])
            else:
                text = ENCODERS[encoding](data)
            body = text.encode("utf-8")
            self._bodies[key] = body
        return body

    def metrics_body(self, served: CachedCollection, accept: str | None, gzipped: bool) -> tuple[bytes, str]:
        """The ``/metrics`` body for an ``Accept`` header, gzipped or not, and its content type."""
        self._switch(served.collection)
        encode, content_type = negotiate_exposition(accept)
        key = ("metrics", content_type, gzipped)
        body = self._bodies.get(key)
        if body is None:
            body = encode(served.collection.metrics).encode("utf-8")
            if gzipped:
                body = gzip.compress(body, compresslevel=6)
            self._bodies[key] = body
        return body, content_type

    def model(self, served: CachedCollection, category: str | None, service: str | None) -> Model:
        """The typed model of ``served`` for a filter, built once per collection and filter."""
        self._switch(served.collection)
        return self._model(self.inputs(served, category, service))

    def _model(self, inputs: ViewInputs) -> Model:
        key = (inputs.category, inputs.service)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build_model(inputs)
        return model

    def _switch(self, collection: Collection) -> None:
        if collection is not self._collection:
            self._collection, self._models, self._documents, self._bodies = collection, {}, {}, {}
