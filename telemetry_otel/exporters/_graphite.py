"""Graphite plaintext push over TCP (default) or UDP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from typing import Literal

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.formats import encode_graphite

__all__ = ["GraphiteExporter"]

#: Largest UDP datagram sent: lines are packed up to this size and never split.
UDP_DATAGRAM_BYTES = 1400


class GraphiteExporter:
    """Sends each batch as Graphite plaintext lines (tagged ``name;k=v`` series by default).

    TCP keeps one connection open and reconnects after a failure; UDP sends datagrams of whole
    lines and cannot tell whether anything arrived.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 2003,
        *,
        protocol: Literal["tcp", "udp"] = "tcp",
        prefix: str | None = None,
        tagged: bool = True,
        resource_tags: Sequence[str] = (),
    ) -> None:
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"graphite protocol {protocol!r} is not one of tcp, udp")
        self.name = f"graphite({protocol}://{host}:{port})"
        self.host, self.port, self.protocol = host, port, protocol
        self.prefix, self.tagged, self.resource_tags = prefix, tagged, tuple(resource_tags)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Encode ``data`` and send it; raises ``OSError`` when the backend cannot be reached."""
        text = encode_graphite(data, prefix=self.prefix, tagged=self.tagged, resource_tags=self.resource_tags)
        if not text:
            return
        payload = text.encode("utf-8")
        with self._lock:
            if self.protocol == "udp":
                self._send_udp(payload)
            else:
                self._send_tcp(payload, timeout_millis / 1000)

    def shutdown(self) -> None:
        """Close the TCP connection."""
        with self._lock:
            self._close()

    def _send_tcp(self, payload: bytes, timeout: float) -> None:
        if self._socket is not None and _peer_closed(self._socket):
            # The server went away (it sent a FIN): writing would "succeed" into the kernel buffer
            # and the batch would be lost. Reconnect instead, which fails while it is down.
            self._close()
        try:
            if self._socket is None:
                self._socket = socket.create_connection((self.host, self.port), timeout=timeout)
            self._socket.settimeout(timeout)
            self._socket.sendall(payload)
        except OSError:
            self._close()
            raise

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
