"""Shared fixtures: a fresh telemetry runtime per test, the process-wide one reset around a test, and a
real uvicorn server on loopback for tests that go through real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

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
