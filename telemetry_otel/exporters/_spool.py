"""A durable spool: one file per pending batch, so pending batches survive a process restart.

Layout: ``<directory>/<exporter key>/<sequence>.batch``, where the sequence orders batches oldest
first across restarts. A file is written to a temporary name, flushed to disk and renamed, so a
crash leaves either a whole file or a ``.tmp`` one. Each file holds a header (magic, format
version, flags, creation time, payload length, CRC-32) and the payload exactly as the exporter
sends it; a file whose header or checksum does not hold (a crash mid-write, a truncated disk) is
skipped with a warning and removed, never a failed start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpooledBatch", "spool_key"]

_logger = logging.getLogger("telemetry_otel.exporters")
_MAGIC = b"TOSP"
_VERSION = 1
_HEADER = struct.Struct(">4sBBQQI")  # magic, version, flags, created (ns, wall clock), length, crc32
_FLAG_DELTA = 1
_SUFFIX = ".batch"


def spool_key(name: str) -> str:
    """A directory name for an exporter's spool: readable, and unique per exporter name."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "exporter"
    return f"{readable}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:10]}"


@dataclass(frozen=True)
class SpooledBatch:
    """A batch read back from the spool."""

    path: Path
    payload: bytes
    created_unix: float
    delta: bool


class Spool:
    """The spool files of one exporter, capped at ``max_bytes`` on disk (payload and header)."""

    def __init__(self, directory: str | os.PathLike[str], name: str, max_bytes: int) -> None:
        self.directory = Path(directory) / spool_key(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_sequence = 0

    def load(self) -> list[SpooledBatch]:
        """Every whole batch on disk, oldest first; broken and half-written files are removed."""
        batches: list[SpooledBatch] = []
        for leftover in sorted(self.directory.glob("*.tmp")):
            _logger.warning("spool file %s was half-written when the process stopped: skipped", leftover)
            with contextlib.suppress(OSError):
                leftover.unlink()
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            batch = self._read(path)
            if batch is None:
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            batches.append(batch)
            with contextlib.suppress(ValueError):
                self._last_sequence = max(self._last_sequence, int(path.stem))
        return batches

    def write(self, payload: bytes, created_unix: float, *, delta: bool) -> Path:
        """Store one batch durably; returns its path."""
        with self._lock:
            self._last_sequence = max(self._last_sequence + 1, time.time_ns())
            sequence = self._last_sequence
        path = self.directory / f"{sequence:020d}{_SUFFIX}"
        temporary = path.with_suffix(".tmp")
        header = _HEADER.pack(
            _MAGIC,
            _VERSION,
            _FLAG_DELTA if delta else 0,
            int(created_unix * 1e9),
            len(payload),
            zlib.crc32(payload),
        )
        with open(temporary, "wb") as file:
            file.write(header)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return path

    @staticmethod
    def file_size(payload_bytes: int) -> int:
        """Bytes a batch of ``payload_bytes`` takes on disk."""
        return _HEADER.size + payload_bytes

    @staticmethod
    def remove(path: Path) -> None:
        """Forget a batch (sent or dropped)."""
        with contextlib.suppress(OSError):
            path.unlink()

    def _read(self, path: Path) -> SpooledBatch | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            _logger.warning("spool file %s cannot be read (%s): skipped", path, exc)
            return None
        if len(raw) < _HEADER.size:
            _logger.warning("spool file %s is truncated (%d bytes): skipped", path, len(raw))
            return None
        magic, version, flags, created, length, crc = _HEADER.unpack_from(raw)
        payload = raw[_HEADER.size :]
        if magic != _MAGIC or version != _VERSION:
            _logger.warning("spool file %s is not a spool batch of this version: skipped", path)
            return None
        if len(payload) != length or zlib.crc32(payload) != crc:
            _logger.warning("spool file %s is incomplete or damaged (checksum): skipped", path)
            return None
        return SpooledBatch(path, payload, created / 1e9, bool(flags & _FLAG_DELTA))
