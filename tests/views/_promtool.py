"""Where ``promtool`` is (installed by ``./dev test`` with the Debian ``prometheus`` package)."""

from __future__ import annotations

import shutil

import pytest


def promtool() -> str:
    """The path of ``promtool``; a missing one fails the test naming the fix (never a skip)."""
    found = shutil.which("promtool") or shutil.which("promtool", path="/usr/bin")
    if found is None:
        pytest.fail("promtool not found: run ./dev test, which installs the Debian package prometheus")
    return found
