"""HTTP content negotiation for a Prometheus scrape: which exposition format, and whether to gzip.

As Prometheus expects of a target: OpenMetrics 1.0 only when the client names it in ``Accept``
(``application/openmetrics-text`` with ``version=1.0.0`` or no version) with a q-value at least as
high as text format 0.0.4's; text 0.0.4 otherwise, including for ``*/*``, no header, a header naming
neither and a malformed header. Parsing never raises: malformed entries are ignored.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import accumulate
from typing import Final, Protocol

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.formats._openmetrics import (
    OPENMETRICS_CONTENT_TYPE,
    encode_openmetrics,
    openmetrics_lines,
)
from telemetry_otel.formats._prometheus import (
    PROMETHEUS_TEXT_CONTENT_TYPE,
    encode_prometheus_text,
    prometheus_text_lines,
)

__all__ = ["ExpositionEncoder", "encode_exposition", "negotiate_exposition", "wants_gzip"]


class ExpositionEncoder(Protocol):
    """An exposition encoder: ``encode_prometheus_text`` or ``encode_openmetrics``."""

    def __call__(self, data: MetricsData, *, agent_label: bool = False) -> str: ...


_OPENMETRICS: Final[tuple[ExpositionEncoder, str]] = (encode_openmetrics, OPENMETRICS_CONTENT_TYPE)
_TEXT: Final[tuple[ExpositionEncoder, str]] = (encode_prometheus_text, PROMETHEUS_TEXT_CONTENT_TYPE)
_GZIP_CODINGS: Final = frozenset({"gzip", "x-gzip"})


def negotiate_exposition(accept: str | None) -> tuple[ExpositionEncoder, str]:
    """The encoder and ``Content-Type`` to answer a scrape whose ``Accept`` header is ``accept``.

    For each format the most specific media range matching it sets its q-value (``text/plain;
    version=0.0.4`` over ``text/plain`` over ``text/*`` over ``*/*`` for text 0.0.4; OpenMetrics only
    matches its own, explicitly listed type). OpenMetrics wins when its q-value is above 0 and not
    below text 0.0.4's; Prometheus 2.42's ``application/openmetrics-text;version=1.0.0,...,
    text/plain;version=0.0.4;q=0.5,*/*;q=0.1`` thus gets OpenMetrics.
    """
    if accept and _prefers_openmetrics(accept):
        return _OPENMETRICS
    return _TEXT


#: Characters (UTF-8 bytes, about) per chunk of an encoded exposition: few chunks for a server to
#: send, each one allocation, and never more than this held twice while a body is encoded.
CHUNK_CHARS: Final = 1 << 20
_LINES: Final[dict[str, Callable[..., list[str]]]] = {
    PROMETHEUS_TEXT_CONTENT_TYPE: prometheus_text_lines,
    OPENMETRICS_CONTENT_TYPE: openmetrics_lines,
}


def encode_exposition(
    data: MetricsData, content_type: str, *, agent_label: bool = False, chunk_chars: int = CHUNK_CHARS
) -> tuple[bytes, ...]:
    """``data`` in the exposition format ``content_type`` names (one that ``negotiate_exposition``
    returns), as UTF-8 chunks of whole lines, about ``chunk_chars`` each, whose concatenation is the
    encoder's text. ``agent_label``: every sample names its agent (``label_agent``; ``/metrics``).

    The text is never held whole, twice: each chunk is encoded while the lines it came from are
    released, so a scrape's body costs about its size once (a server sends the chunks in turn).
    ``chunk_chars`` must be a whole number of at least 1 (a ``ValueError`` otherwise).
    """
    if isinstance(chunk_chars, bool) or not isinstance(chunk_chars, int) or chunk_chars < 1:
        raise ValueError(f"chunk_chars must be an integer >= 1 (1 to any size), got {chunk_chars!r}")
    lines = _LINES[content_type](data, agent_label=agent_label)
    # Where each chunk ends: the first line end at or past each multiple of chunk_chars.
    ends = list(accumulate(map(len, lines)))
    cuts: list[int] = []
    target = chunk_chars
    while ends and target < ends[-1]:
        cut = bisect_left(ends, target) + 1
        if cut >= len(ends):
            break
        cuts.append(cut)
        target = ends[cut - 1] + chunk_chars
    del ends
    chunks: list[bytes] = []
    for cut in reversed(cuts):  # take chunks off the end: no line is moved
        chunks.append("".join(lines[cut:]).encode("utf-8"))
        del lines[cut:]
    if lines:
        chunks.append("".join(lines).encode("utf-8"))
    chunks.reverse()
    return tuple(chunks)


def wants_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows a gzip body: ``gzip`` (or ``*``) with q above 0.

    An explicit ``gzip;q=0`` refuses it even when ``*`` allows anything; no header, an empty one or
    ``identity`` alone mean an uncompressed body.
    """
    if not accept_encoding:
        return False
    gzip_q = star_q = -1.0
    for coding, params in _entries(accept_encoding):
        q = _q_value(params)
        if q is None:
            continue
        if coding in _GZIP_CODINGS:
            gzip_q = max(gzip_q, q)
        elif coding == "*":
            star_q = max(star_q, q)
    return (gzip_q if gzip_q >= 0 else star_q) > 0


@lru_cache(maxsize=128)
def _prefers_openmetrics(accept: str) -> bool:
    # (specificity, q) of the most specific range matching each format; specificity -1: no match.
    openmetrics = (-1, 0.0)
    text = (-1, 0.0)
    for media_type, params in _entries(accept):
        q = _q_value(params)
        if q is None:
            continue
        version = params.get("version")
        if media_type == "application/openmetrics-text":
            if version is None or version == "1.0.0":
                openmetrics = _more_specific(openmetrics, (1 if version is None else 2, q))
        elif media_type == "text/plain":
            if version is None or version == "0.0.4":
                text = _more_specific(text, (2 if version is None else 3, q))
        elif media_type == "text/*":
            text = _more_specific(text, (1, q))
        elif media_type == "*/*":
            text = _more_specific(text, (0, q))
    return openmetrics[0] >= 0 and openmetrics[1] > 0 and openmetrics[1] >= text[1]


def _more_specific(best: tuple[int, float], candidate: tuple[int, float]) -> tuple[int, float]:
    """The more specific match; between equally specific ones, the higher q-value."""
    return candidate if candidate > best else best


def _entries(header: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The ``(lower-cased value, parameters)`` pairs of a comma-separated header, empty ones skipped."""
    for item in header.split(","):
        value, _, rest = item.partition(";")
        value = value.strip().lower()
        if not value:
            continue
        params: dict[str, str] = {}
        for param in rest.split(";"):
            key, equals, param_value = param.partition("=")
            key = key.strip().lower()
            if key and equals:
                params.setdefault(key, param_value.strip().strip('"'))
        yield value, params


def _q_value(params: dict[str, str]) -> float | None:
    """The entry's q-value (1 when absent), or None when it is not a number from 0 to 1."""
    text = params.get("q")
    if text is None:
        return 1.0
    try:
        q = float(text)
    except ValueError:
        return None
    return q if math.isfinite(q) and 0.0 <= q <= 1.0 else None
