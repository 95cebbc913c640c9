"""The status page in a real browser: headless Chromium (Debian package ``chromium``) loads it from the
app served by uvicorn on 127.0.0.1, takes a screenshot and dumps the DOM it built.

The runtime is the demo plus a service whose reason is markup that would change the page's title if
it ran. A missing ``chromium`` binary fails the test (it never skips).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx2
import pytest
import uvicorn

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.instrumentation.demo import BUSES, SERVICES, DemoRuntime
from telemetry_otel.views import create_app

CHROMIUM_PACKAGE = "chromium"
WINDOW = (1280, 1600)
PAYLOAD = (
    "<b>bold</b> <script>document.title='pwned'</script> "
    "<img src=x onerror=\"document.title='pwned'\"> <i>end</i>"
)
CHROMIUM_TIMEOUT = 60.0


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium", path="/usr/bin")
    if found is None:
        pytest.fail(
            f"chromium not found: install the Debian package {CHROMIUM_PACKAGE!r} "
            "(apt-get install -y --no-install-recommends chromium)"
        )
    return found


def _run_chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium to completion in its own process group; the group is killed on timeout."""
    argv = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):  # helpers left behind by the browser
                os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@contextlib.contextmanager
def _serving(telemetry: Telemetry) -> Iterator[str]:
    """The app on 127.0.0.1 (a port the OS picks) under uvicorn in a thread; yields its base URL."""
    app = create_app(telemetry, agent="demo", cache_ttl_seconds=300)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-status-page", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive():
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        assert server.started, "uvicorn exited before it started"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "uvicorn did not stop"


class _Dom(HTMLParser):
    """Elements and text of a serialized DOM, with the document title and the status card's text."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
    )

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.title = ""
        self.status_text = ""
        self._open: list[tuple[str, bool]] = []  # (tag, is the status card)
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self._open.append((tag, ("id", "status") in attrs))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        tags = [tag for tag, _ in self._open]
        if tags[-1:] == ["title"] and "svg" not in tags:
            self.title += data
        if any(is_status for _, is_status in self._open):
            self.status_text += data


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_status_page_renders_in_headless_chromium(telemetry: Telemetry, tmp_path: Path) -> None:
    binary = _chromium()
    demo = DemoRuntime(telemetry, seed=4)
    probe = instrument_service("markup_probe", category="edge", telemetry=telemetry)
    try:
        for _ in range(8):
            demo.step()
        for index in range(30):  # 10 errors in 30 requests: an error-ratio alert
            probe.record_request(0.02, index % 3 == 0)
        probe.report_health("warn", PAYLOAD)
        with _serving(telemetry) as base, httpx2.Client(base_url=base, timeout=10) as client:
            url = f"{base}/api/demo/v1/telemetry?format=html"
            summary = client.get("/api/demo/v1/telemetry").json()  # the same cached collection as the page
            page = client.get(url)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            screenshot = tmp_path / "status-page.png"
            shot = _run_chromium(
                binary,
                tmp_path / "profile-shot",
                f"--screenshot={screenshot}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                url,
            )
            assert shot.returncode == 0, shot.stderr[-2000:]
            dumped = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
            assert dumped.returncode == 0, dumped.stderr[-2000:]
    finally:
        probe.close()
        demo.close()

    assert _png_size(screenshot) == WINDOW
    assert screenshot.stat().st_size > 20_000, "the screenshot looks blank"

    dom = _Dom(dumped.stdout)
    text = "".join(dom.text)
    # The runtime's status, as the JSON summary of the same collection says.
    assert summary["status"] == "warn"
    assert summary["status"] in dom.status_text
    assert dom.title.startswith("WARN · demo"), dom.title  # no injected script changed the title
    for category in [*SERVICES, "edge"]:
        assert category in text
    for bus in BUSES:
        assert bus in text
    assert "Active alerts (" in text
    assert "error_ratio_warn" in text
    # The markup in the reason is text on the page, and none of it became an element.
    assert PAYLOAD in text
    assert {"script", "img", "b", "i"}.isdisjoint(dom.tags), set(dom.tags)
    assert "pwned" not in dom.title
