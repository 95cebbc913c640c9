"""Wall-clock deadlines on every export, enforced here whatever the server does.

A socket timeout bounds one read or write, not a whole exchange: a server that sends one byte every
0.25 s keeps any per-read timeout from ever firing. So every socket an export opens is registered
with one watchdog thread, which shuts it down (``shutdown(SHUT_RDWR)``, which wakes a read or write
blocked in another thread) when the export's deadline passes; every operation is also given only
the time that remains. :func:`post` is the HTTP client of the InfluxDB and OTLP/HTTP exporters.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import math
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "Deadline",
    "ExportDeadlineError",
    "HTTPAnswer",
    "RetryableExportError",
    "connect",
    "guard",
    "parse_retry_after",
    "post",
    "release",
]


class ExportDeadlineError(TimeoutError):
    """The export's deadline passed before the backend answered in full (the socket was closed)."""


class RetryableExportError(OSError):
    """A failure worth retrying; ``retry_after`` (s) is the backend's own wait, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deadline:
    """A point on the monotonic clock an export must end by."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + max(0.0, seconds)
        self.expired = False  # set by the watchdog when it closed a socket of this deadline

    def remaining(self) -> float:
        """Seconds left (0 when passed)."""
        return max(0.0, self.at - time.monotonic())

    def tighten(self, at: float) -> None:
        """End earlier: at ``at`` (monotonic) if that is sooner, sockets in use included."""
        _watchdog.tighten(self, at)

    def check(self, what: str) -> float:
        """Seconds left; :class:`ExportDeadlineError` naming ``what`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise ExportDeadlineError(f"deadline passed before {what}")
        return left


class _Watchdog:
    """One daemon thread that shuts registered sockets down when their deadline passes."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, tuple[socket.socket, Deadline]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def register(self, sock: socket.socket, deadline: Deadline) -> int:
        with self._lock:
            key = next(self._ids)
            self._live[key] = (sock, deadline)
            heapq.heappush(self._heap, (deadline.at, key))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="telemetry-export-watchdog", daemon=True
                )
                self._thread.start()
            self._lock.notify()
            return key

    def release(self, key: int) -> None:
        with self._lock:
            if self._live.pop(key, None) is not None:
                self._lock.notify()

    def tighten(self, deadline: Deadline, at: float) -> None:
        """Move ``deadline`` (and its sockets' shutdown) earlier, to ``at``."""
        with self._lock:
            if at >= deadline.at:
                return
            deadline.at = at
            for key, (_, owner) in self._live.items():
                if owner is deadline:
                    heapq.heappush(self._heap, (at, key))
            self._lock.notify()

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # released before its deadline
                if not self._heap:
                    self._thread = None  # idle: the next registration starts a new thread
                    return
                at, key = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
                sock, deadline = self._live[key]
                if deadline.at > at:
                    continue  # an older entry of a deadline moved since: its own entry fires
                del self._live[key]
                deadline.expired = True
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()


@contextlib.contextmanager
def guard(sock: socket.socket, deadline: Deadline) -> Iterator[None]:
    """Shut ``sock`` down when ``deadline`` passes while inside this block."""
    key = _watchdog.register(sock, deadline)
    try:
        yield
    finally:
        _watchdog.release(key)


@dataclass(frozen=True)
class HTTPAnswer:
    """A complete HTTP answer: status, headers (lower-case names) and body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, deadline: Deadline, keys: list[int]) -> None:
        super().__init__(host, port, timeout=deadline.check("connecting"))
        self._deadline, self._keys = deadline, keys

    def connect(self) -> None:
        self.sock = connect(self.host, self.port, self._deadline, self._keys)


class _TLSConnection(_Connection):
    default_port = http.client.HTTPS_PORT

    def __init__(
        self, host: str, port: int | None, deadline: Deadline, keys: list[int], context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, deadline, keys)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)
        self._keys.append(_watchdog.register(self.sock, self._deadline))


def connect(host: str, port: int, deadline: Deadline, keys: list[int]) -> socket.socket:
    """A TCP connection to ``host:port`` made before ``deadline``, registered with the watchdog
    (its key appended to ``keys``: release them when done)."""
    error: OSError | None = None
    for family, kind, proto, _, target in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        keys.append(_watchdog.register(sock, deadline))
        try:
            sock.settimeout(deadline.check("connecting"))
            sock.connect(target)
            return sock
        except OSError as exc:
            error = (
                ExportDeadlineError(f"connecting to {host}:{port} outlived the deadline")
                if (deadline.expired or deadline.remaining() <= 0)
                else exc
            )
            sock.close()
    raise error or OSError(f"no address for {host}")


def release(keys: list[int]) -> None:
    """Stop watching the sockets of ``keys``."""
    for key in keys:
        _watchdog.release(key)
    keys.clear()


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    deadline: Deadline,
    *,
    context: ssl.SSLContext | None = None,
) -> HTTPAnswer:
    """POST ``body`` to ``url`` and read the whole answer, all before ``deadline``.

    Raises :class:`ExportDeadlineError` when the deadline passes first (however the server trickles),
    ``OSError`` when the server cannot be reached or the connection breaks.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    keys: list[int] = []
    host = parts.hostname
    connection: _Connection
    if parts.scheme == "https":
        connection = _TLSConnection(host, parts.port, deadline, keys, context or ssl.create_default_context())
    else:
        connection = _Connection(host, parts.port, deadline, keys)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request("POST", target, body=body, headers={**headers, "Connection": "close"})
        if connection.sock is not None:
            connection.sock.settimeout(deadline.check("reading the answer"))
        response = connection.getresponse()
        chunks = []
        while True:
            if connection.sock is not None:
                connection.sock.settimeout(deadline.check("reading the answer"))
            chunk = response.read1(65536) if not response.isclosed() else b""
            if not chunk:
                break
            chunks.append(chunk)
        answer = HTTPAnswer(
            response.status,
            response.reason,
            {name.lower(): value for name, value in response.getheaders()},
            b"".join(chunks),
        )
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired or deadline.remaining() <= 0:
            raise ExportDeadlineError(f"no complete answer from {parts.netloc} within the deadline") from None
        if isinstance(exc, OSError):
            raise
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    finally:
        release(keys)
        connection.close()
    if deadline.expired:
        raise ExportDeadlineError(f"no complete answer from {parts.netloc} within the deadline")
    return answer


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
