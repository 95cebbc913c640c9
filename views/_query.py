"""The unified endpoint's query: parsed and checked, every refusal a 400 naming what is allowed.

The request's own parameters (``view``, ``format``, ``live``) are checked first; the filters
(``category``, ``service``) then against the collection served, so that a filter names a service of
the cycle the response shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from starlette.requests import Request
from starlette.responses import Response

from telemetry_otel import Collection
from telemetry_otel.views._errors import error_response
from telemetry_otel.views._formats import FORMATS
from telemetry_otel.views._render import VIEWS

__all__ = ["INFLUX_PRECISIONS", "QUERY_PARAMETERS", "Query", "check_filters", "parse_query"]

#: Query parameters of the unified endpoint; ``category`` and ``service`` take registered names.
QUERY_PARAMETERS = ("view", "format", "category", "service", "live", "precision")
#: Timestamp units of ``format=influxdb`` (``precision=``); the default is InfluxDB's own, ``ns``.
InfluxPrecision: TypeAlias = Literal["s", "ms", "us", "ns"]
INFLUX_PRECISIONS: tuple[InfluxPrecision, ...] = get_args(InfluxPrecision)
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Query:
    """One validated query of the unified endpoint."""

    view: str
    format: str
    category: str | None
    service: str | None
    live: bool
    #: Timestamp unit of ``format=influxdb`` (None: not given, nanoseconds).
    precision: str | None = None
    #: ``category``/``service`` given more than once, with the count: refused once the allowed
    #: values (the served collection's) are known.
    repeated: tuple[tuple[str, int], ...] = ()


def parse_query(request: Request) -> Query | Response:
    """The validated query, or a 400 naming the parameter and every value it allows.

    ``category`` and ``service`` are checked against the served collection by :func:`_check_filters`.
    """
    params = request.query_params
    for key in params:
        if key not in QUERY_PARAMETERS:
            return error_response(400, f"unknown query parameter {key!r}", allowed=list(QUERY_PARAMETERS))
    choices: dict[str, Sequence[str] | None] = {
        "view": VIEWS,
        "format": list(FORMATS),
        "category": None,
        "service": None,
        "live": list(_BOOLEANS),
        "precision": INFLUX_PRECISIONS,
    }
    chosen: dict[str, str | None] = {}
    repeated: list[tuple[str, int]] = []
    for key, allowed in choices.items():
        values = params.getlist(key)
        if allowed is None:  # a filter: checked against the collection served
            if len(values) > 1:
                repeated.append((key, len(values)))
            chosen[key] = values[0] if len(values) == 1 else None
            continue
        if len(values) > 1:
            return error_response(
                400, f"query parameter {key!r} given {len(values)} times", allowed=list(allowed)
            )
        if values and values[0] not in allowed:
            return error_response(
                400, f"{key}={values[0]!r} is not one of the allowed values", allowed=list(allowed)
            )
        chosen[key] = values[0] if values else None
    return Query(
        view=chosen["view"] or "summary",
        format=chosen["format"] or "json",
        category=chosen["category"],
        service=chosen["service"],
        live=_BOOLEANS[chosen["live"] or "false"],
        precision=chosen["precision"],
        repeated=tuple(repeated),
    )


def check_filters(query: Query, collection: Collection) -> Response | None:
    """A 400 naming the allowed values when ``category`` or ``service`` is not in ``collection``."""
    if query.category is None and query.service is None and not query.repeated:
        return None  # nothing to check: most requests
    services = [record for record in collection.components if record.is_service]
    choices = {
        "category": (query.category, sorted({record.category for record in services if record.category})),
        "service": (query.service, sorted(record.name for record in services)),
    }
    repeated = dict(query.repeated)
    for key, (value, allowed) in choices.items():
        if key in repeated:
            return error_response(
                400, f"query parameter {key!r} given {repeated[key]} times", allowed=allowed
            )
        if value is not None and value not in allowed:
            return error_response(400, f"{key}={value!r} is not one of the allowed values", allowed=allowed)
    return None


def check_precision(query: Query) -> Response | None:
    """A 400 when ``precision`` is given for a format other than InfluxDB's, else None."""
    if query.precision is not None and query.format != "influxdb":
        message = f"query parameter 'precision' applies to format=influxdb, not format={query.format}"
        return error_response(400, message, allowed=["influxdb"])
    return None


def check_page_view(query: Query, views: Sequence[str]) -> Response | None:
    """A 400 naming ``views`` when ``format=html`` asks for a view the page does not show, else None."""
    if query.format == "html" and query.view not in views:
        shown = f"the {' and '.join(views)} view{'s' if len(views) > 1 else ''}"
        return error_response(400, f"format=html shows {shown}, not {query.view!r}", allowed=list(views))
    return None
