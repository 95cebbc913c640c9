"""Graphite plaintext push over TCP (default) or UDP."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Literal

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters._deadline import Deadline, ExportDeadlineError, connect, guard, release
from telemetry_otel.exporters._influx import IDENTITY_TAGS
from telemetry_otel.formats import encode_graphite

__all__ = ["GraphiteExporter"]

#: Largest UDP datagram sent: lines are packed up to this size and never split.
UDP_DATAGRAM_BYTES = 1400
#: Batches written to a TCP connection within this many seconds before it is found dead are sent
#: again on the next connection: plaintext has no acknowledgement, and a server that stops (or
#: dies) may never have read what the kernel accepted. Carbon stores a point per timestamp, so a
#: batch that did arrive is only overwritten with the same values.
RESEND_SECONDS = 5.0


class GraphiteExporter:
    """Sends each batch as Graphite plaintext lines (tagged ``name;k=v`` series by default).

    TCP keeps one connection open and reconnects after a failure; UDP sends datagrams of whole
    lines and cannot tell whether anything arrived. A TCP send ends by its deadline whatever the
    server does (a server that stops reading cannot hold it). ``resource_tags``: resource
    attributes written as ``resource.<key>`` tags (nodes when not ``tagged``), by default the
    runtime's identity (``service.name`` and ``service.instance.id``). The views' status, health
    score and alert series are pushed too (``derived_series``).
    """

    #: Takes the derived series (status, health score, alerts) with each collection.
    derived_series = True
    delta_batches = False

    def __init__(
        self,
        host: str = "localhost",
        port: int = 2003,
        *,
        protocol: Literal["tcp", "udp"] = "tcp",
        prefix: str | None = None,
        tagged: bool = True,
        resource_tags: Sequence[str] = IDENTITY_TAGS,
    ) -> None:
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"graphite protocol {protocol!r} is not one of tcp, udp")
        self.name = f"graphite({protocol}://{host}:{port})"
        self.host, self.port, self.protocol = host, port, protocol
        self.prefix, self.tagged, self.resource_tags = prefix, tagged, tuple(resource_tags)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        #: (monotonic time, payload) written to the current connection in the last RESEND_SECONDS.
        self._recent: deque[tuple[float, bytes]] = deque()
        #: Payloads of a connection found dead, sent first on the next one.
        self._resend: list[bytes] = []

    def reset_after_fork(self) -> None:
        """A forked child opens a connection of its own (the parent's stays the parent's) and makes
        its lock anew (a parent thread may have held it)."""
        self._lock = threading.Lock()
        if self._socket is not None:
            self._socket.close()  # the child's copy of the descriptor only: the parent's stays open
        self._socket = None
        self._recent = deque()
        self._resend = []

    def encode(self, data: MetricsData) -> bytes:
        """The batch as plaintext lines (empty when it has no line)."""
        text = encode_graphite(data, prefix=self.prefix, tagged=self.tagged, resource_tags=self.resource_tags)
        return text.encode("utf-8")

    def send(self, payload: bytes, deadline: Deadline) -> None:
        """Send ``payload``, ended by ``deadline``; raises ``OSError`` when it cannot be delivered."""
        if not payload:
            return
        with self._lock:
            if self.protocol == "udp":
                self._send_udp(payload)
            else:
                self._send_tcp(payload, deadline)

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Encode and send ``data`` within ``timeout_millis``."""
        self.send(self.encode(data), Deadline(timeout_millis / 1000))

    def shutdown(self) -> None:
        """Close the TCP connection."""
        with self._lock:
            self._close()

    def _send_tcp(self, payload: bytes, deadline: Deadline) -> None:
        if self._socket is not None and _peer_closed(self._socket):
            # The server went away (it sent a FIN): writing would "succeed" into the kernel buffer
            # and the batch would be lost. Reconnect instead, which fails while it is down.
            self._connection_lost()
        keys: list[int] = []
        try:
            fresh = self._socket is None
            if fresh:
                self._socket = connect(self.host, self.port, deadline, keys)
                release(keys)
            sock = self._socket
            assert sock is not None
            data = b"".join([*self._resend, payload]) if fresh and self._resend else payload
            with guard(sock, deadline):
                view = memoryview(data)
                while view:
                    sock.settimeout(deadline.check("sending"))
                    sent = sock.send(view)
                    view = view[sent:]
            if deadline.expired:
                raise ExportDeadlineError("the send outlived its deadline")
        except OSError as exc:
            release(keys)
            self._connection_lost()
            if deadline.expired and not isinstance(exc, ExportDeadlineError):
                raise ExportDeadlineError(
                    f"sending to {self.host}:{self.port} outlived the deadline"
                ) from None
            raise
        now = time.monotonic()
        if fresh:
            self._resend = []
        self._recent.append((now, payload))
        while self._recent and self._recent[0][0] < now - RESEND_SECONDS:
            self._recent.popleft()

    def _connection_lost(self) -> None:
        """The connection is dead: what was written to it lately is sent again on the next one."""
        now = time.monotonic()
        recent = [payload for at, payload in self._recent if at >= now - RESEND_SECONDS]
        if recent:
            self._resend = [*self._resend, *recent][-64:]
        self._recent.clear()
        self._close()

    def _send_udp(self, payload: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in _datagrams(payload):
                sock.sendto(datagram, (self.host, self.port))

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _peer_closed(sock: socket.socket) -> bool:
    """True when the peer has closed or reset the connection (carbon never writes to us).

    The peek must not wait: a socket with a timeout would first wait that long for data.
    """
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # open, and nothing to read: the normal case
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def _datagrams(payload: bytes) -> list[bytes]:
    """Whole lines packed into datagrams of at most ``UDP_DATAGRAM_BYTES`` (a longer line goes alone)."""
    datagrams: list[bytes] = []
    current = b""
    for line in payload.splitlines(keepends=True):
        if current and len(current) + len(line) > UDP_DATAGRAM_BYTES:
            datagrams.append(current)
            current = b""
        current += line
    if current:
        datagrams.append(current)
    return datagrams
