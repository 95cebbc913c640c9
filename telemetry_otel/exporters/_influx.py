"""InfluxDB line protocol push over HTTP: v1 ``/write?db=`` or v2 ``/api/v2/write``."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Literal

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters._deadline import Deadline, RetryableExportError, parse_retry_after, post
from telemetry_otel.exporters._retry import PermanentExportError
from telemetry_otel.formats import encode_influx
from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID, SERVICE_NAME

__all__ = ["IDENTITY_TAGS", "InfluxExporter"]

#: Resource attributes every pushed line carries by default, as ``resource.<key>`` tags: the
#: runtime's ``service.name`` and its ``service.instance.id`` (two runtimes never share a series,
#: and the per-service ``service.name`` tag of a point is never overwritten).
IDENTITY_TAGS: tuple[str, ...] = (SERVICE_NAME, SERVICE_INSTANCE_ID)

Precision = Literal["s", "ms", "us", "ns"]


class InfluxExporter:
    """Writes each batch as line protocol.

    v1: give ``database`` (and optionally ``username``/``password``). v2: give ``org``, ``bucket``
    and ``token``. A 4xx answer other than 429 (malformed line, type conflict, unknown database,
    bad token) is permanent: retrying sends the same batch and fails the same way, so it is dropped
    with the server's reason. Network errors, 429 and 5xx are retried (a ``Retry-After`` is
    honoured). Every write ends by its deadline whatever the server does (see ``_deadline``).
    ``resource_tags``: resource attributes written as ``resource.<key>`` tags, by default the
    runtime's identity (:data:`IDENTITY_TAGS`). The status, health score and alert series of the
    views are pushed too (``derived_series``).
    """

    #: Takes the derived series (status, health score, alerts) with each collection.
    derived_series = True
    delta_batches = False

    def __init__(
        self,
        url: str = "http://localhost:8086",
        *,
        database: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        precision: Precision = "s",
        resource_tags: Sequence[str] = IDENTITY_TAGS,
    ) -> None:
        v2 = bucket is not None or org is not None
        if v2 and (not bucket or not org or not token):
            raise ValueError("InfluxDB v2 needs org, bucket and token")
        if not v2 and not database:
            raise ValueError("InfluxDB needs database (v1) or org, bucket and token (v2)")
        if precision not in ("s", "ms", "us", "ns"):
            raise ValueError(f"precision {precision!r} is not one of s, ms, us, ns")
        base = url.rstrip("/")
        self.precision: Precision = precision
        self.resource_tags = tuple(resource_tags)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if v2:
            query = {"org": org or "", "bucket": bucket or "", "precision": precision}
            self._url = f"{base}/api/v2/write?{urllib.parse.urlencode(query)}"
            self._headers["Authorization"] = f"Token {token}"
            self.name = f"influxdb-v2({base}, bucket={bucket})"
        else:
            # InfluxDB 1.x spells microseconds "u" and takes an unknown spelling as nanoseconds,
            # silently storing every point in 1970.
            query = {"db": database or "", "precision": "u" if precision == "us" else precision}
            if username is not None:
                query.update(u=username, p=password or "")
            self._url = f"{base}/write?{urllib.parse.urlencode(query)}"
            self.name = f"influxdb({base}, db={database})"

    def encode(self, data: MetricsData) -> bytes:
        """The batch as line protocol (empty when it has no line)."""
        return encode_influx(data, precision=self.precision, resource_tags=self.resource_tags).encode("utf-8")

    def send(self, payload: bytes, deadline: Deadline) -> None:
        """POST ``payload``, ended by ``deadline``; raises on failure (:class:`PermanentExportError`
        when retrying cannot help, :class:`RetryableExportError` with the server's ``Retry-After``)."""
        if not payload:
            return
        answer = post(self._url, payload, self._headers, deadline)
        if 200 <= answer.status < 300:
            return
        reason = answer.body.decode("utf-8", "replace").strip()
        message = f"HTTP {answer.status}: {reason or answer.reason}"
        if 400 <= answer.status < 500 and answer.status not in (408, 429):
            raise PermanentExportError(message)
        raise RetryableExportError(message, parse_retry_after(answer.headers.get("retry-after")))

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Encode and send ``data`` within ``timeout_millis``."""
        self.send(self.encode(data), Deadline(timeout_millis / 1000))

    def shutdown(self) -> None:
        """Nothing to release: every write is its own request."""
