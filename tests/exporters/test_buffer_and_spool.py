"""The retry buffer is bounded by age and bytes (whichever is hit first), every drop is counted by
reason, and a spool directory keeps pending batches across a restart, oldest first."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters import PermanentExportError, RetryPolicy
from telemetry_otel.exporters._deadline import Deadline
from telemetry_otel.exporters._retry import RetryingExporter
from telemetry_otel.exporters._spool import Spool, spool_key


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class _Backend:
    """Encodes each batch as the next number; refuses everything while ``down``."""

    name = "numbers"
    delta_batches = False

    def __init__(self) -> None:
        self.down = True
        self.reject = False
        self.received: list[bytes] = []
        self._next = 0

    def encode(self, data: MetricsData) -> bytes:
        self._next += 1
        return f"{self._next:04d}".encode() * 25  # 100 bytes

    def send(self, payload: bytes, deadline: Deadline) -> None:
        if self.reject:
            raise PermanentExportError("bad batch")
        if self.down:
            raise ConnectionRefusedError("down")
        self.received.append(payload)

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        raise AssertionError("encode/send are used")

    def shutdown(self) -> None:
        pass


def _numbers(payloads: list[bytes]) -> list[int]:
    return [int(payload[:4]) for payload in payloads]


def _data() -> MetricsData:
    return MetricsData(resource_metrics=[])


def test_the_age_bound_drops_the_oldest_batches_and_counts_them() -> None:
    clock, backend = _Clock(), _Backend()
    exporter = RetryingExporter(backend, RetryPolicy(max_buffer_seconds=10), clock, wall=clock)
    for _ in range(15):  # one batch a second, the backend down
        exporter.submit(_data(), 1_000)
        clock.now += 1
    stats = exporter.stats()
    assert stats.buffered == 10 or stats.buffered == 11, stats
    assert stats.dropped_by_reason["age"] == 15 - stats.buffered
    backend.down = False
    assert exporter.flush(1_000)
    assert _numbers(backend.received) == list(range(16 - len(backend.received), 16))  # the newest, in order


def test_the_byte_bound_drops_the_oldest_batches_and_counts_them() -> None:
    clock, backend = _Clock(), _Backend()
    exporter = RetryingExporter(backend, RetryPolicy(max_buffer_bytes=450), clock, wall=clock)
    for _ in range(10):
        exporter.submit(_data(), 1_000)
    stats = exporter.stats()
    assert (stats.buffered, stats.buffered_bytes, stats.dropped_by_reason) == (4, 400, {"bytes": 6})
    backend.down = False
    exporter.flush(1_000)
    assert _numbers(backend.received) == [7, 8, 9, 10]


def test_a_rejected_batch_is_counted_as_rejected(caplog: pytest.LogCaptureFixture) -> None:
    backend = _Backend()
    backend.reject = True
    exporter = RetryingExporter(backend)
    exporter.submit(_data(), 1_000)
    stats = exporter.stats()
    assert (stats.rejected, stats.dropped, stats.dropped_by_reason) == (1, 0, {"rejected": 1})


def test_pending_batches_are_dropped_and_counted_at_shutdown_without_a_spool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = _Backend()
    exporter = RetryingExporter(backend)
    for _ in range(3):
        exporter.enqueue(_data())
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        exporter.abandon()
    assert exporter.stats().dropped_by_reason == {"shutdown": 3}
    assert "3 batch(es) not delivered by shutdown were dropped" in caplog.text


def test_failures_are_logged_once_a_minute_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock, backend = _Clock(), _Backend()
    exporter = RetryingExporter(backend, RetryPolicy(max_buffered_batches=2), clock, wall=clock)
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        for _ in range(30):  # 30 s of failures, one attempt per second
            exporter.submit(_data(), 1_000)
            clock.now += 1
        assert len(caplog.records) == 1
        clock.now += 31
        exporter.submit(_data(), 1_000)
    assert len(caplog.records) == 2
    message = caplog.records[1].getMessage()
    assert "failed attempt(s)" in message
    assert "(29 count)" in message or "count)" in message, message


def test_a_restart_sends_the_spooled_batches_first_oldest_first(tmp_path: Path) -> None:
    backend = _Backend()
    policy = RetryPolicy(spool_directory=str(tmp_path))
    first = RetryingExporter(backend, policy)
    for _ in range(5):
        first.submit(_data(), 1_000)
    first.abandon()  # the process stops: nothing dropped, the batches stay on disk
    assert first.stats().dropped_by_reason == {}
    assert len(list((tmp_path / spool_key(backend.name)).glob("*.batch"))) == 5
    restarted = _Backend()
    restarted.down = False
    second = RetryingExporter(restarted, policy)
    assert second.stats().buffered == 5
    second.submit(_data(), 1_000)  # the new process's first batch goes after them
    assert _numbers(restarted.received) == [1, 2, 3, 4, 5, 1]
    assert list((tmp_path / spool_key(backend.name)).glob("*.batch")) == []


def test_a_half_written_or_damaged_spool_file_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, "numbers", 1 << 20)
    now = time.time()
    good = spool.write(b"0001" * 25, now, delta=False)
    damaged = spool.write(b"0002" * 25, now, delta=False)
    damaged.write_bytes(damaged.read_bytes()[:-10])  # the disk filled up mid-write
    (spool.directory / "00000000000000000009.tmp").write_bytes(b"TOSP\x01")  # a crash before the rename
    (spool.directory / "00000000000000000010.batch").write_bytes(b"garbage")
    backend = _Backend()
    backend.down = False
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        exporter = RetryingExporter(backend, RetryPolicy(spool_directory=str(tmp_path)))
    assert exporter.stats().buffered == 1
    exporter.flush(1_000)
    assert backend.received == [b"0001" * 25]
    warnings = caplog.text
    assert "half-written" in warnings
    assert "checksum" in warnings
    assert "truncated" in warnings
    assert not good.exists()
    assert list(spool.directory.iterdir()) == []


def test_the_spool_cap_drops_the_oldest_and_counts_it(tmp_path: Path) -> None:
    backend = _Backend()
    cap = 3 * Spool.file_size(100)
    exporter = RetryingExporter(backend, RetryPolicy(spool_directory=str(tmp_path), max_spool_bytes=cap))
    for _ in range(5):
        exporter.submit(_data(), 1_000)
    stats = exporter.stats()
    assert (stats.buffered, stats.spooled, stats.dropped_by_reason) == (3, 3, {"spool": 2})
    assert len(list((tmp_path / spool_key(backend.name)).glob("*.batch"))) == 3


def test_a_dropped_delta_batch_is_counted_apart() -> None:
    backend = _Backend()
    backend.delta_batches = True  # type: ignore[misc]
    exporter = RetryingExporter(backend, RetryPolicy(max_buffered_batches=1))
    for _ in range(3):
        exporter.enqueue(_data())
    assert (exporter.stats().dropped, exporter.stats().dropped_delta) == (2, 2)


def test_bad_buffer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_buffer_seconds"):
        RetryPolicy(max_buffer_seconds=0)
    with pytest.raises(ValueError, match="max_buffer_bytes"):
        RetryPolicy(max_buffer_bytes=0)
    with pytest.raises(ValueError, match="max_retry_after_seconds"):
        RetryPolicy(max_retry_after_seconds=-1)


def test_an_exporter_without_encode_is_kept_in_memory_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class _Plain:
        name = "plain"

        def __init__(self) -> None:
            self.calls = 0

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            self.calls += 1

        def shutdown(self) -> None:
            raise RuntimeError("cannot close")

    plain = _Plain()
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        exporter = RetryingExporter(plain, RetryPolicy(spool_directory=str(tmp_path)))
        exporter.submit(_data(), 1_000)
        exporter.shutdown()  # a failing shutdown is logged, never raised
    assert plain.calls == 1
    assert "cannot be spooled" in caplog.text
    assert "failed to shut down" in caplog.text


def test_a_batch_that_cannot_be_encoded_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    backend = _Backend()

    def broken(data: MetricsData) -> bytes:
        raise ValueError("no encoding")

    backend.encode = broken  # type: ignore[method-assign]
    exporter = RetryingExporter(backend)
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        exporter.enqueue(_data())
    assert exporter.stats().dropped_by_reason == {"encode": 1}
    assert "could not encode a batch" in caplog.text


def test_a_spool_that_cannot_be_written_keeps_the_batch_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _Backend()
    exporter = RetryingExporter(backend, RetryPolicy(spool_directory=str(tmp_path)))
    spool_dir = tmp_path / spool_key(backend.name)
    spool_dir.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
            exporter.enqueue(_data())
    finally:
        spool_dir.chmod(0o700)
    stats = exporter.stats()
    if os.geteuid() == 0:  # root writes anyway: the batch is spooled
        assert stats.spooled == 1
    else:
        assert (stats.buffered, stats.spooled) == (1, 0)
        assert "spool write failed" in caplog.text


def test_a_spool_file_of_another_format_or_unreadable_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, "numbers", 1 << 20)
    other = spool.write(b"0001" * 25, time.time(), delta=False)
    other.write_bytes(b"XXXX" + other.read_bytes()[4:])
    (spool.directory / "00000000000000000005.batch").mkdir()  # cannot be read as a file
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        assert Spool(tmp_path, "numbers", 1 << 20).load() == []
    assert "not a spool batch of this version" in caplog.text
    assert "cannot be read" in caplog.text


def test_a_worker_that_hits_a_bug_logs_it_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    from telemetry_otel.exporters import ExportPipeline

    backend = _Backend()
    backend.down = False
    pipeline = ExportPipeline(lambda demand: _data(), [backend], interval_millis=60_000, timeout_millis=1_000)
    [retrying] = pipeline.exporters
    original = retrying.deliver
    calls = {"n": 0}

    def flaky(timeout_millis: float, *, force: bool) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        original(timeout_millis, force=force)

    retrying.deliver = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="telemetry_otel.exporters"):
        pipeline.export_now()
        pipeline.export_now()
    pipeline.shutdown(1_000)
    pipeline.export_now()  # after shutdown: nothing, no error
    assert "export worker of numbers failed" in caplog.text
    assert len(backend.received) == 3  # the batch of the failed round went with the next one, and the final
