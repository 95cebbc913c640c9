"""A client of the Prometheus HTTP query API (``/api/v1/query``, ``/api/v1/series``), as Prometheus,
VictoriaMetrics, Mimir and Thanos answer it: instant queries and their samples, the series matching
selectors within a time range, and every failure as one reason.

Standard library only (``urllib``): the fleet app runs each request on a worker thread. Every request
is counted (:attr:`PrometheusClient.queries`, and :attr:`PrometheusClient.series_requests` for those
to ``/api/v1/series``), so that a response can say how many it took.

Every query is sent with ``nocache=1``. VictoriaMetrics reads it as "evaluate at the time asked":
without it, a query within ``-search.latencyOffset`` (default 30 s) of now is moved back by that
offset and may come from its response cache, so the fleet would see agents as they were 30 s ago
(a killed agent shown down 30 s late). Prometheus, Mimir and Thanos ignore the parameter.
"""

from __future__ import annotations

import base64
import json
import math
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_TSDB_TIMEOUT_SECONDS", "PrometheusClient", "Sample", "TsdbConfig", "TsdbError"]

#: How long one query may take before the TSDB counts as unavailable.
DEFAULT_TSDB_TIMEOUT_SECONDS = 10.0


class TsdbError(Exception):
    """The TSDB could not answer a query; the message is the reason, fit for a 503 body."""


@dataclass(frozen=True)
class TsdbConfig:
    """Where the TSDB is and how to talk to it.

    ``headers`` are sent with every query (a tenant header such as Mimir's ``X-Scope-OrgID``);
    ``basic_auth`` (user, password) or ``bearer_token`` authenticate (not both); ``verify_tls``
    off accepts any certificate (a self-signed test server).
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    timeout_seconds: float = DEFAULT_TSDB_TIMEOUT_SECONDS
    verify_tls: bool = True

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the TSDB URL must be http:// or https:// with a host, got {self.url!r}")
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic auth or a bearer token for the TSDB, not both")
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ValueError(
                f"the TSDB timeout must be a positive number of seconds, got {self.timeout_seconds!r}"
            )
        for name in self.headers:
            if name.lower() == "authorization" and (self.basic_auth or self.bearer_token):
                raise ValueError("an Authorization header and basic auth or a bearer token: give one")


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels (``__name__`` included when kept) and value."""

    labels: Mapping[str, str]
    value: float


class PrometheusClient:
    """Instant queries and series look-ups against one TSDB; :attr:`queries` counts every request."""

    def __init__(self, config: TsdbConfig) -> None:
        self.config = config
        self._endpoint = config.url.rstrip("/") + "/api/v1/query"
        self._series_endpoint = config.url.rstrip("/") + "/api/v1/series"
        self._series_requests = 0
        self._headers = {"Accept": "application/json", **config.headers}
        if config.basic_auth is not None:
            user, password = config.basic_auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        elif config.bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {config.bearer_token}"
        self._context = None if config.verify_tls else ssl._create_unverified_context()
        self._lock = threading.Lock()
        self._queries = 0

    @property
    def queries(self) -> int:
        """Requests sent since the client was made (instant queries and series look-ups)."""
        return self._queries

    @property
    def series_requests(self) -> int:
        """Of :attr:`queries`, the requests to ``/api/v1/series``."""
        return self._series_requests

    def query(self, promql: str, at_unix_seconds: float) -> list[Sample]:
        """The instant vector ``promql`` evaluates to at ``at_unix_seconds``; a :class:`TsdbError`
        names why there is none (unreachable, timed out, refused, an error status, not a vector)."""
        form = {"query": promql, "time": f"{at_unix_seconds:.3f}", "nocache": "1"}
        return _vector(self._post(self._endpoint, list(form.items())), self.config.url)

    def series(self, matches: Sequence[str], start_unix: float, end_unix: float) -> list[dict[str, str]]:
        """The label sets of every series matching any selector of ``matches`` with a sample between
        ``start_unix`` and ``end_unix`` (one request, whatever the number of selectors)."""
        with self._lock:
            self._series_requests += 1
        form = [("match[]", match) for match in matches]
        form += [("start", f"{start_unix:.3f}"), ("end", f"{end_unix:.3f}"), ("nocache", "1")]
        return _label_sets(self._post(self._series_endpoint, form), self.config.url)

    def _post(self, endpoint: str, form: list[tuple[str, str]]) -> bytes:
        with self._lock:
            self._queries += 1
        encoded = urllib.parse.urlencode(form).encode("ascii")
        request = urllib.request.Request(endpoint, data=encoded, headers=self._headers, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        where = self.config.url
        try:
            with urllib.request.urlopen(
                request, timeout=self.config.timeout_seconds, context=self._context
            ) as answer:
                body: bytes = answer.read()
        except urllib.error.HTTPError as exc:
            raise TsdbError(f"the TSDB at {where} answered {exc.code}: {_error_text(exc)}") from None
        except TimeoutError:
            raise TsdbError(
                f"the TSDB at {where} did not answer within {self.config.timeout_seconds:g} s"
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TsdbError(
                    f"the TSDB at {where} did not answer within {self.config.timeout_seconds:g} s"
                ) from None
            raise TsdbError(f"cannot reach the TSDB at {where}: {exc.reason}") from None
        except OSError as exc:
            raise TsdbError(f"cannot reach the TSDB at {where}: {exc}") from None
        return body


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        found = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return str(exc.reason)
    if isinstance(found, dict) and isinstance(found.get("error"), str):
        return str(found["error"])
    return str(exc.reason)


def _success(body: bytes, where: str) -> Any:
    """The ``data`` of a successful answer; a :class:`TsdbError` for anything else."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise TsdbError(f"the TSDB at {where} answered something that is not JSON") from None
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise TsdbError(f"the TSDB at {where} refused the query: {error or 'no success status'}")
    return document.get("data")


def _label_sets(body: bytes, where: str) -> list[dict[str, str]]:
    data = _success(body, where)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise TsdbError(f"the TSDB at {where} answered series that are not label sets")
    return [{str(key): str(value) for key, value in item.items()} for item in data]


def _vector(body: bytes, where: str) -> list[Sample]:
    data = _success(body, where) or {}
    if not isinstance(data, dict):
        raise TsdbError(f"the TSDB at {where} answered a {type(data).__name__}, not an instant vector")
    if data.get("resultType") != "vector":
        raise TsdbError(f"the TSDB at {where} answered a {data.get('resultType')!r}, not an instant vector")
    samples = []
    for item in data.get("result") or ():
        try:
            labels = {str(key): str(value) for key, value in item["metric"].items()}
            samples.append(Sample(labels, float(item["value"][1])))
        except (KeyError, IndexError, TypeError, ValueError):
            raise TsdbError(f"the TSDB at {where} answered a sample that is not [time, value]") from None
    return samples
