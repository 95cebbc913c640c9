"""The status page (``format=html``): escaping, structure, self-refresh, no external asset, history."""

from __future__ import annotations

import dataclasses
import re
import time
from html.parser import HTMLParser
from typing import Any

import pytest
from plain_data import SECOND, PlainCollection, plain_inputs
from starlette.testclient import TestClient

from telemetry_otel import Collection, Telemetry
from telemetry_otel.instrumentation import Bus, instrument_service
from telemetry_otel.instrumentation.demo import BUSES, SERVICES, DemoRuntime
from telemetry_otel.views import create_app
from telemetry_otel.views._build import build_model
from telemetry_otel.views._history import HistoryPoint, StatusHistory
from telemetry_otel.views._html import HTML_VIEWS, page, refresh_seconds_for, render_html
from telemetry_otel.views._inputs import ViewInputs

BASE = "/api/demo/v1/telemetry"
SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src=x onerror="alert(2)">'
BOLD = "<b>bold</b>"
HOSTILE = f"{SCRIPT} {IMAGE} {BOLD} & 'quotes' \"double\""
#: Every element and attribute the page may contain: nothing that runs, loads or submits.
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "section",
    "footer",
    "h1",
    "h2",
    "h3",
    "p",
    "div",
    "span",
    "a",
    "table",
    "colgroup",
    "col",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "svg",
    "line",
    "polyline",
    "circle",
}
ALLOWED_ATTRIBUTES = {
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "class",
    "id",
    "href",
    "xmlns",
    "width",
    "height",
    "viewbox",
    "role",
    "aria-label",
    "x1",
    "x2",
    "y1",
    "y2",
    "points",
    "cx",
    "cy",
    "r",
    "fill",
}


class _Page(HTMLParser):
    """The page's elements, attributes and text, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def _collection(time_unix_nano: int = 1_800_000_000 * SECOND, scale: float = 1.0) -> Collection:
    """Five services (hostile names and reasons among them) and two buses, as plain data."""
    fast_and_slow = [0.2] * 50 + [0.4] * 50  # p95: 0.25 + 0.25 * 45/50 = 0.475 s
    return (
        PlainCollection(time_unix_nano)
        .service("memory", "graph", requests=100 * scale, errors=0, durations=fast_and_slow, outcome="ok")
        .service(HOSTILE, "graph", health="warn", reason=HOSTILE)
        .service("llm", f"cat{BOLD}", requests=20 * scale, errors=0)
        .service(f"svc{IMAGE}", f"cat{BOLD}", requests=40 * scale, errors=10 * scale)  # 25 %: a warning
        .service("dark", f"cat{BOLD}", health=None)
        .service("openai_primary", None, health="fail", reason="down")
        .service("openai_fallback", None)
        .bus(
            "llm",
            {"openai_primary": "openai_primary", "openai_fallback": "openai_fallback", "local": "local"},
        )
        .bus(f"bus{SCRIPT}", {})
        .build()
    )


def _inputs() -> ViewInputs:
    """The collection, 4 s after one with 50 fewer requests: 12.5 requests per second."""
    now = 1_800_000_000 * SECOND
    return plain_inputs(_collection(now), previous=_collection(now - 4 * SECOND, scale=110 / 160))


def _points(*rates: float | None) -> list[HistoryPoint]:
    return [
        HistoryPoint(index * 30 * 10**9, rate, None if rate is None else rate / 100, 0.1)
        for index, rate in enumerate(rates, start=1)
    ]


def test_every_value_is_escaped_text_never_markup() -> None:
    page = render_html(_inputs(), _points(1.0, 2.0), f"agent{SCRIPT}", 10)
    parsed = _Page(page)
    assert set(parsed.tags) <= ALLOWED_TAGS, set(parsed.tags) - ALLOWED_TAGS
    names = {name for name, _ in parsed.attributes}
    assert names <= ALLOWED_ATTRIBUTES, names - ALLOWED_ATTRIBUTES
    assert not any(name.startswith("on") for name in names)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "b" not in parsed.tags
    # The markup is there, as text: in the services table, the category, the status reason, the agent.
    text = parsed.all_text
    assert text.count(HOSTILE) >= 4
    assert f"svc{IMAGE}" in text
    assert f"cat{BOLD}" in text
    assert f"bus{SCRIPT}" in text
    assert f"agent{SCRIPT}" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>" not in page
    # A status picks its CSS class from a fixed list, never from the value.
    assert re.findall(r'class="badge ([^"]*)"', page)
    kinds = set(re.findall(r'class="badge ([a-z]+)', page))
    assert kinds <= {"pass", "warn", "fail", "unknown", "critical", "warning"}
    assert "unknown" in kinds  # the service that reports no health


def test_a_status_outside_the_fixed_list_is_text_with_the_unknown_class() -> None:
    model = build_model(_inputs())
    category = dataclasses.replace(model.categories[0], status=f"warn{SCRIPT}")  # type: ignore[arg-type]
    hostile = dataclasses.replace(model, categories=(category, *model.categories[1:]))
    page_text = page(hostile, [], "demo", 10)
    badge = re.search(r'<span class="badge ([a-z]+)">warn&lt;script&gt;', page_text)
    assert badge is not None
    assert badge.group(1) == "unknown"


def test_the_page_is_self_contained_and_refreshes_itself() -> None:
    page = render_html(_inputs(), _points(1.0, 2.0), "demo", 7)
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert page.endswith("</html>\n")
    assert '<meta http-equiv="refresh" content="7">' in page
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert policy is not None
    assert "default-src 'none'" in policy.group(1)
    assert "script" not in policy.group(1)  # no script source allowed at all
    # No external asset: no src, no stylesheet link, no CSS url() or @import, no absolute URL
    # other than the SVG namespace (an identifier, never fetched).
    assert "src" not in {name for name, _ in _Page(page).attributes}
    assert "<link" not in page
    assert "url(" not in page
    assert "@import" not in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs
    assert all(href.startswith("/") for href in hrefs)


def test_the_page_shows_status_score_categories_buses_alerts_and_trends() -> None:
    inputs = _inputs()
    model = build_model(inputs)
    assert (model.status, model.requests, model.errors, model.request_rate) == ("warn", 160, 10, 12.5)
    assert model.score is not None
    page = _Page(render_html(inputs, _points(10.0, None, 12.0, 11.0), "demo", 10))
    text = page.all_text
    assert "warn" in text
    assert f"{model.score:.1f}" in text
    assert "6.25 %" in text
    assert "12.5 /s" in text
    assert "475.0 ms" in text
    assert "graph" in text
    assert f"cat{BOLD}" in text
    assert "Active alerts (1)" in text
    assert "error_ratio_warn" in text
    # Buses with provider counts: 3 providers, 1 pass, 0 warn, 1 fail, 1 unknown.
    assert "openai_primary: fail" in text
    row = re.search(r"<td>llm</td>(.*?)</tr>", render_html(inputs, [], "demo", 10))
    assert row is not None
    assert re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["3", "1", "0", "1", "1"]
    assert "last 4 collections over 1.5 min" in text
    rendered = render_html(inputs, _points(10.0, None, 12.0, 11.0), "demo", 10)
    # The gap (None) splits the request-rate line: one dot, then a two-point line.
    trend = rendered.split('id="trend-request-rate"')[1].split("</svg>")[0]
    assert trend.count("<polyline") == 1
    assert trend.count("<circle") == 1


def test_unknown_values_are_dashes_and_a_trend_needs_two_points() -> None:
    quiet = PlainCollection().service("idle", "runtime", requests=0, errors=0).build()
    page = render_html(plain_inputs(quiet), _points(5.0), "demo", 10)
    text = _Page(page).all_text
    assert "missing: error_ratio, latency, resource_pressure, circuit_breakers" in text
    assert "1 collection so far" in text
    assert "<polyline" not in page
    assert "—" in text
    empty = render_html(plain_inputs(PlainCollection().build()), [], "demo", 10)
    assert "No services." in empty
    assert "No active alerts." in empty
    assert "No buses." in empty


@pytest.mark.parametrize("refresh", [0, -1, True, 2.5])
def test_refresh_must_be_a_positive_integer(refresh: Any) -> None:
    with pytest.raises(ValueError, match="refresh_seconds must be a positive integer"):
        render_html(_inputs(), [], "demo", refresh)


def test_refresh_follows_the_cache_window_within_bounds() -> None:
    assert [refresh_seconds_for(ttl) for ttl in (0, 0.5, 5, 12.2, 30, 600, float("inf"))] == [
        5,
        5,
        5,
        13,
        30,
        60,
        60,
    ]


def test_render_html_is_pure() -> None:
    inputs, points = _inputs(), _points(1.0, 2.0)
    kept = repr((inputs, points))  # every value of the collection, its data points included
    first = render_html(inputs, points, "demo", 10)
    assert render_html(inputs, points, "demo", 10) == first
    assert repr((inputs, points)) == kept


def test_history_is_bounded_and_takes_one_point_per_new_collection() -> None:
    history = StatusHistory(max_points=3)

    def at(time_unix_nano: int) -> ViewInputs:
        inputs = _inputs()
        collection = dataclasses.replace(inputs.collection, time_unix_nano=time_unix_nano)
        previous = dataclasses.replace(inputs.previous, time_unix_nano=time_unix_nano - 4 * SECOND)  # type: ignore[type-var]
        return dataclasses.replace(inputs, collection=collection, previous=previous)

    assert history.record(at(10 * SECOND))
    assert not history.record(at(10 * SECOND))  # the same collection again: no point
    assert not history.record(at(5 * SECOND))  # an older one: no point
    for seconds in (20, 30, 40, 50):
        assert history.record(at(seconds * SECOND))
    assert len(history) == history.max_points == 3
    assert [point.time_unix_nano for point in history.points()] == [30 * SECOND, 40 * SECOND, 50 * SECOND]
    assert history.points()[-1] == HistoryPoint(50 * SECOND, 12.5, 0.0625, 0.475)
    idle = PlainCollection(60 * SECOND).service("idle", requests=0, errors=0).build()
    history.record(plain_inputs(idle))
    assert history.points()[-1] == HistoryPoint(60 * SECOND, None, None, None)
    for bad in (1, 0, True, 2.0):
        with pytest.raises(ValueError, match="max_points"):
            StatusHistory(max_points=bad)


def test_status_page_renders_a_real_demo_collection(telemetry: Telemetry, make_inputs: Any) -> None:
    demo = DemoRuntime(telemetry, seed=4)
    try:
        for _ in range(3):
            demo.step()
        inputs = make_inputs()
        page = render_html(inputs, [], "demo", 30)
    finally:
        demo.close()
    text = _Page(page).all_text
    for category in SERVICES:
        assert category in text
    for service in SERVICES["runtime"]:
        assert service in text
    for bus in BUSES:
        assert bus in text
    assert "Buses" in text


def _populate(telemetry: Telemetry) -> None:
    probe = instrument_service("probe", category="edge", telemetry=telemetry)
    for index in range(30):
        probe.record_request(0.01, index % 3 == 0)
    probe.report_health("warn", HOSTILE)
    calm = instrument_service("calm", category="core", telemetry=telemetry)
    calm.record_request(0.002)
    calm.report_health("pass")
    Bus("queue", telemetry=telemetry).attach(calm)


def test_the_endpoint_serves_the_page(telemetry: Telemetry) -> None:
    _populate(telemetry)
    with TestClient(create_app(telemetry, agent="demo", cache_ttl_seconds=60)) as client:
        response = client.get(BASE, params={"format": "html"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = _Page(response.text)
        assert "script" not in page.tags
        text = page.all_text
        assert HOSTILE in text
        assert "edge" in text
        assert "core" in text
        assert "error_ratio_warn" in text
        assert '<meta http-equiv="refresh" content="60">' in response.text
        for view in HTML_VIEWS:
            assert client.get(BASE, params={"format": "html", "view": view}).status_code == 200
        filtered = client.get(BASE, params={"format": "html", "category": "core"}).text
        assert "Filtered: category=core" in _Page(filtered).all_text
        assert "probe" not in _Page(filtered.split('id="trends"')[1]).all_text


@pytest.mark.parametrize("view", ["operational", "performance", "reliability", "detailed"])
def test_other_views_are_a_400_naming_the_page_views(telemetry: Telemetry, view: str) -> None:
    _populate(telemetry)
    with TestClient(create_app(telemetry, agent="demo")) as client:
        response = client.get(BASE, params={"format": "html", "view": view})
    assert response.status_code == 400
    assert response.json() == {
        "error": f"format=html shows the summary and health views, not {view!r}",
        "allowed": ["summary", "health"],
    }


def test_history_takes_a_point_per_new_collection_not_per_request(telemetry: Telemetry) -> None:
    _populate(telemetry)

    def collections(page: str) -> str:
        found = re.search(r"(\d+) collections? (so far|over)", page)
        assert found is not None
        return found.group(1)

    with TestClient(create_app(telemetry, agent="demo", cache_ttl_seconds=60)) as client:
        first = client.get(BASE, params={"format": "html"}).text
        client.get(BASE)  # the same cached collection: no new point
        assert collections(client.get(BASE, params={"format": "html"}).text) == collections(first) == "1"
        for _ in range(3):
            client.get(BASE, params={"live": "true"})  # a new collection each time
        page = client.get(BASE, params={"format": "html", "live": "true"}).text
        assert collections(page) == "5"
        # The request rate needs two collections: the trend shows a number now.
        assert "/s" in _Page(page.split('id="trend-request-rate"')[1]).all_text


def test_the_page_of_one_collection_shows_its_age_when_sent(telemetry: Telemetry) -> None:
    _populate(telemetry)

    def shown(page: str) -> tuple[str, float]:
        found = re.search(r"Collection ([0-9T:.Z-]+) · age ([0-9.]+) (ms|s)", page)
        assert found is not None, page[:2000]
        value = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
        return found.group(1), value

    with TestClient(create_app(telemetry, agent="demo", cache_ttl_seconds=60)) as client:
        first = shown(client.get(BASE, params={"format": "html"}).text)
        time.sleep(0.3)
        again = shown(client.get(BASE, params={"format": "html"}).text)
    assert first[0] == again[0]  # the same collection
    assert again[1] >= first[1] + 0.25  # its age, as of each response
