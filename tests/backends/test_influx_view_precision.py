"""A view in ``format=influxdb`` written to a real InfluxDB 1.x with the ``precision`` the query asked for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import pytest

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views import create_app

if TYPE_CHECKING:
    from _support import InfluxDB

pytestmark = pytest.mark.backend

BASE = "/api/demo/v1/telemetry"


@pytest.mark.parametrize("precision", ["s", "ms", "us", "ns"])
def test_a_view_written_with_the_precision_it_was_asked_for_is_accepted_at_that_time(
    telemetry: Telemetry, live_server: Callable[..., Any], influxdb: InfluxDB, precision: str
) -> None:
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    service.record_request(0.01)
    service.report_health("pass")
    base = live_server(create_app(telemetry, agent="demo")).url
    params = {"view": "summary", "format": "influxdb", "precision": precision}
    lines = httpx.get(f"{base}{BASE}", params=params, timeout=10).text
    summary = httpx.get(f"{base}{BASE}", timeout=10).json()
    db = f"precision_{precision}_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    # InfluxDB 1.x's /write spells microseconds "u" (2.x's /api/v2/write: "us").
    assert influxdb.write(db, lines, precision="u" if precision == "us" else precision) == (204, "")
    [row] = influxdb.rows(db, 'SELECT "value" FROM "telemetry.health.score"')
    collection_seconds = telemetry.cycle.latest.time_unix_nano // 10**9  # type: ignore[union-attr]
    assert row["time"] == collection_seconds  # read back at the collection's time, in seconds
    assert row["value"] == summary["health_score"]["score"]


def test_the_default_is_nanoseconds_which_a_seconds_writer_refuses(
    telemetry: Telemetry, live_server: Callable[..., Any], influxdb: InfluxDB
) -> None:
    """What the issue hit: the exporter's default precision is s, the endpoint's default is ns."""
    instrument_service("memory", category="graph", telemetry=telemetry).report_health("pass")
    base = live_server(create_app(telemetry, agent="demo")).url
    lines = httpx.get(f"{base}{BASE}", params={"view": "health", "format": "influxdb"}, timeout=10).text
    db = f"precision_default_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    status, body = influxdb.write(db, lines, precision="s")
    assert status == 400
    assert "time outside range" in body
    assert influxdb.write(db, lines, precision="ns") == (204, "")
