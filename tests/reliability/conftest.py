"""Shared pieces of the reliability suite: a real uvicorn server on loopback, and thread accounting.

Every figure in ``docs/reliability.md`` comes from a test of this directory (or of
``tests/backends/test_export_faults.py``); tests print their figures on lines starting with
``RELIABILITY`` (visible with ``pytest -s``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp


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


def _thread_names() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


@contextmanager
def _no_thread_leak(timeout: float = 5.0) -> Iterator[None]:
    before = _thread_names()
    yield
    deadline = time.monotonic() + timeout
    while threading.active_count() > len(before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _thread_names() == before


@pytest.fixture
def no_thread_leak() -> Callable[..., Any]:
    """``with no_thread_leak(): ...`` asserts the threads alive after the block are those before it
    (waiting up to 5 s for threads that are ending)."""
    return _no_thread_leak


@pytest.fixture
def report() -> Callable[..., None]:
    """``report(name, **figures)`` prints a line of figures for docs/reliability.md (``pytest -s``)."""

    def emit(name: str, **figures: Any) -> None:
        print(f"RELIABILITY {name}:", " ".join(f"{key}={value}" for key, value in figures.items()))

    return emit
