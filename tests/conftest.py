"""Shared fixtures: a fresh telemetry runtime per test, the process-wide one reset around a test, and a
real uvicorn server on loopback for tests that go through real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

from telemetry_otel import Telemetry, TelemetryConfig, shutdown_telemetry


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    # No live floor: tests ask for live collections back to back (the floor has tests of its own).
    runtime = Telemetry(TelemetryConfig(service_name="test-agent", live_min_interval_millis=0))
    yield runtime
    runtime.shutdown()


@pytest.fixture
def shared() -> Iterator[None]:
    """For tests of the process-wide runtime: none before the test, and none left behind, whatever
    the test did."""
    shutdown_telemetry()
    yield
    shutdown_telemetry()


class LiveServer:
    """A uvicorn server running ``app`` in a thread on 127.0.0.1, on a port picked by the kernel."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="test-uvicorn", daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        [listener] = self.server.servers
        port = listener.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def tasks(self) -> int:
        """How many asyncio tasks the server's loop holds right now."""
        assert self.loop is not None

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(5)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        if self._thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 15 s")


@pytest.fixture
def live_server() -> Iterator[Callable[[ASGIApp], LiveServer]]:
    """``live_server(app) -> LiveServer`` (started); every server is stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(app: ASGIApp) -> LiveServer:
        server = LiveServer(app).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


class HostileServer:
    """A TCP server on 127.0.0.1 that misbehaves in one way, on a thread of its own.

    ``behaviour``: ``silent`` (accepts, reads, never answers), ``trickle`` (answers an HTTP 200 one
    byte every ``byte_seconds``), ``status`` (answers ``status`` at once, with ``retry_after`` as a
    ``Retry-After`` header when given), ``reset`` (resets every connection as soon as it is
    accepted), ``blackhole`` (accepts and never reads). ``requests`` counts the connections accepted.
    """

    def __init__(
        self,
        behaviour: str,
        *,
        byte_seconds: float = 0.25,
        status: int = 500,
        retry_after: str | None = None,
    ) -> None:
        import socket

        self.behaviour, self.byte_seconds, self.status, self.retry_after = (
            behaviour,
            byte_seconds,
            status,
            retry_after,
        )
        self.requests = 0
        self.connected_at: list[float] = []
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name=f"hostile-{behaviour}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        import time as _time

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.requests += 1
            self.connected_at.append(_time.monotonic())
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _handle(self, conn: Any) -> None:
        import socket
        import struct

        with conn:
            try:
                if self.behaviour == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if self.behaviour == "blackhole":
                    self._stop.wait(30)
                    return
                conn.settimeout(0.2)
                self._read_request(conn)
                if self.behaviour == "silent":
                    self._stop.wait(30)
                elif self.behaviour == "trickle":
                    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    for byte in answer:
                        if self._stop.wait(self.byte_seconds):
                            return
                        conn.sendall(bytes([byte]))
                else:
                    extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
                    body = b"busy"
                    conn.sendall(
                        (
                            f"HTTP/1.1 {self.status} Hostile\r\nContent-Length: {len(body)}\r\n{extra}"
                            "Connection: close\r\n\r\n"
                        ).encode()
                        + body
                    )
            except OSError:
                return

    def _read_request(self, conn: Any) -> None:
        """Read headers and a Content-Length body (whatever arrives within a short while)."""
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                if self._stop.is_set():
                    return
                continue
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            body += chunk

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileServer]]:
    """``hostile(behaviour, **options) -> HostileServer`` (see :class:`HostileServer`), closed after
    the test."""
    servers: list[HostileServer] = []

    def start(behaviour: str, **options: Any) -> HostileServer:
        server = HostileServer(behaviour, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Full-length (``soak``) runs only with ``TELEMETRY_OTEL_SOAK=1``: CI skips them."""
    import os

    if os.environ.get("TELEMETRY_OTEL_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="a full-length run: set TELEMETRY_OTEL_SOAK=1 to run it")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
