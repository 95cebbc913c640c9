"""InfluxDB line protocol push over HTTP: v1 ``/write?db=`` or v2 ``/api/v2/write``."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Literal

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters._retry import PermanentExportError
from telemetry_otel.formats import encode_influx

__all__ = ["InfluxExporter"]

Precision = Literal["s", "ms", "us", "ns"]


class InfluxExporter:
    """Writes each batch as line protocol.

    v1: give ``database`` (and optionally ``username``/``password``). v2: give ``org``, ``bucket``
    and ``token``. A 4xx answer other than 429 (malformed line, type conflict, unknown database,
    bad token) is permanent: retrying sends the same batch and fails the same way, so it is dropped
    with the server's reason. Network errors, 429 and 5xx are retried.
    """

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
        resource_tags: Sequence[str] = (),
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

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """POST the encoded batch; raises on failure (:class:`PermanentExportError` when final)."""
        body = encode_influx(data, precision=self.precision, resource_tags=self.resource_tags)
        if not body:
            return
        request = urllib.request.Request(
            self._url, data=body.encode("utf-8"), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_millis / 1000) as response:
                response.read()
        except urllib.error.HTTPError as error:
            reason = error.read().decode("utf-8", "replace").strip()
            error.close()
            message = f"HTTP {error.code}: {reason or error.reason}"
            if 400 <= error.code < 500 and error.code != 429:
                raise PermanentExportError(message) from None
            raise OSError(message) from None

    def shutdown(self) -> None:
        """Nothing to release: every write is its own request."""
