"""Full-length runs under ``telemetry-otel serve``: 5 and 10 minutes at a 1 s interval, pushing to a
real InfluxDB and carbon-cache, each backend down for a while in the middle, then SIGTERM.

Marked ``soak``: CI skips them (``./dev test`` runs them with ``TELEMETRY_OTEL_SOAK=1``); their
figures are in ``docs/reliability.md``. Measured from outside, as an operator sees it: the points
stored per second of the run, the exporters' health in the reliability view while it runs, the
process's memory, and the exit time after SIGTERM.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

import psutil
import pytest

pytestmark = [pytest.mark.backend, pytest.mark.soak]

COMMAND = [sys.executable, "-m", "telemetry_otel"]


@pytest.mark.parametrize("minutes", [5, 10])
def test_serve_pushes_every_second_through_outages(
    minutes: int, start_influxdb: Any, start_carbon: Any
) -> None:
    influxdb, carbon = start_influxdb(), start_carbon()
    db = f"soak_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    host, port = carbon.line_address
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_"))}
    env.update(
        OTEL_METRICS_EXPORTER="graphite,influxdb",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        TELEMETRY_OTEL_GRAPHITE_ENDPOINT=f"{host}:{port}",
        TELEMETRY_OTEL_INFLUXDB_URL=influxdb.url,
        TELEMETRY_OTEL_INFLUXDB_DATABASE=db,
        TELEMETRY_OTEL_INFLUXDB_PRECISION="ms",
    )
    process = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--port", "0", "--seed", "7"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd="/",
    )
    assert process.stderr is not None
    url = None
    while url is None:
        line = process.stderr.readline()
        assert line, "serve ended before it listened"
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        url = found.group(1) if found else None
    run = minutes * 60.0
    started_wall, started = time.time(), time.monotonic()
    memory = psutil.Process(process.pid)
    rss: list[int] = []
    worst: dict[str, Any] = {}
    # Outages: InfluxDB for 60 s from a third of the run, carbon for 30 s from two thirds.
    plan = [(run / 3, influxdb, 60.0), (2 * run / 3, carbon, 30.0)]
    try:
        for at, server, seconds in plan:
            while time.monotonic() - started < at:
                rss.append(memory.memory_info().rss)
                _watch(url, worst)
                time.sleep(1.0)
            server.stop()
            down = time.monotonic()
            while time.monotonic() - down < seconds:
                rss.append(memory.memory_info().rss)
                _watch(url, worst)
                time.sleep(1.0)
            server.start()
        while time.monotonic() - started < run:
            rss.append(memory.memory_info().rss)
            _watch(url, worst)
            time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert process.wait(30) == 0
        exit_seconds = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stderr.close()
    time.sleep(2.0)  # carbon writes what it caches within a second or so
    # InfluxDB at ms precision keeps one point per delivered batch. The exporters' own counters
    # travel with every batch: the final batch says how many were delivered and how many waited
    # when it was collected, so nothing was lost exactly when the stored points are those plus it.
    stamps = [int(t) / 1000 for t, _ in _influx(influxdb, db, 'SELECT value FROM "telemetry.collections"')]
    values = [v for _, v in _influx(influxdb, db, 'SELECT value FROM "telemetry.collections"')]
    sent = _influx(
        influxdb,
        db,
        'SELECT last(value) FROM "telemetry.export.sent" WHERE "telemetry.exporter" =~ /^influxdb/',
    )
    [(_, sent_before_final)] = sent
    [(_, queued_at_final)] = _influx(
        influxdb,
        db,
        'SELECT last(value) FROM "telemetry.export.queue.length" WHERE "telemetry.exporter" =~ /^influxdb/',
    )
    late_ticks = sum(1 for gap in itertools.pairwise(stamps) if gap[1] - gap[0] > 1.5)
    [instance] = {
        row.get("resource.service.instance.id")
        for row in influxdb.rows(
            db, 'SELECT value, "resource.service.instance.id" FROM "telemetry.collections" LIMIT 1'
        )
    }
    name = (
        "telemetry.collections;otel.scope.name=telemetry_otel.collector;"
        f"resource.service.instance.id={instance};resource.service.name=demo"
    )
    # carbon keeps one point per second: every second in which a batch was collected has its point.
    carbon_seconds = {t for t, _ in carbon.read_series(name, since=int(started_wall))}
    collected_seconds = {int(stamp) for stamp in stamps}
    missing_in_carbon = sorted(collected_seconds - carbon_seconds)
    print(
        f"RELIABILITY soak-{minutes}min: batches={len(stamps)} delivered_before_final={sent_before_final} "
        f"queued_at_final={queued_at_final} late_ticks={late_ticks} "
        f"carbon_seconds={len(collected_seconds & carbon_seconds)}/{len(collected_seconds)} "
        f"exit_s={exit_seconds:.2f} rss_start_mib={rss[0] / 2**20:.1f} rss_max_mib={max(rss) / 2**20:.1f} "
        f"rss_end_mib={rss[-1] / 2**20:.1f} worst={json.dumps(worst, sort_keys=True)}"
    )
    assert len(stamps) == sent_before_final + queued_at_final + 1, (len(stamps), sent_before_final)
    assert missing_in_carbon == [], missing_in_carbon[:20]
    assert late_ticks <= 0.02 * run, late_ticks  # a tick whose collection was not ready in time
    assert len(stamps) >= 0.95 * run, len(stamps)
    assert values == sorted(values)
    assert all(entry.get("dropped", 0) == 0 for key, entry in worst.items() if key != "view_errors"), worst
    assert exit_seconds <= 11.5


def _influx(influxdb: Any, db: str, query: str) -> list[tuple[int, float]]:
    """(time in ms, value) of every row of ``query``."""
    answer = influxdb.http.get("/query", params={"db": db, "q": query, "epoch": "ms"}).json()
    return [(int(t), v) for series in answer["results"][0].get("series", []) for t, v in series["values"]]


def _watch(url: str, worst: dict[str, Any]) -> None:
    """Keep the worst figures of each exporter seen in the reliability view."""
    try:
        with urllib.request.urlopen(f"{url}/api/demo/v1/telemetry?view=reliability", timeout=5) as response:
            document = json.load(response)
    except OSError:
        worst["view_errors"] = worst.get("view_errors", 0) + 1
        return
    for name, health in document.get("exporters", {}).items():
        key = name.split("(")[0]
        entry = worst.setdefault(key, {"max_queue": 0, "max_age_s": 0.0, "statuses": []})
        entry["max_queue"] = max(entry["max_queue"], health.get("queue_length", 0))
        entry["max_age_s"] = max(entry["max_age_s"], round(health.get("last_success_age_seconds") or 0.0, 1))
        if health["status"] not in entry["statuses"]:
            entry["statuses"].append(health["status"])
        entry["dropped"] = health.get("dropped", 0)
