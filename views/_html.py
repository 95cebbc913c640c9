"""The status page: the summary and health views as one self-contained HTML document.

``render_html`` is pure (no I/O, no clock): the same documents and history give the same page. Every
value taken from a document is escaped with :func:`html.escape` (names, reasons, statuses, numbers
alike) and statuses pick a CSS class from a fixed list, so a reason such as
``<script>alert(1)</script>`` is shown as text and never becomes markup. The page needs no
external asset: inline CSS, inline SVG trend lines, no JavaScript at all, and a
``Content-Security-Policy`` that forbids scripts and every fetch. It refreshes itself with
``<meta http-equiv="refresh">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from telemetry_otel.views._history import HistoryPoint
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._render import render_view

__all__ = ["HTML_VIEWS", "refresh_seconds_for", "render_html", "status_page"]

#: The views the page shows (``format=html`` accepts ``view`` = one of these, or none).
HTML_VIEWS: tuple[str, ...] = ("summary", "health")

_STATUSES = frozenset({"pass", "warn", "fail", "unknown"})
_SEVERITIES = frozenset({"critical", "warning"})
_MIN_REFRESH, _MAX_REFRESH = 5, 60
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_SPARK_WIDTH, _SPARK_HEIGHT, _SPARK_PAD = 280.0, 56.0, 4.0

_CSS = """
:root{color-scheme:light;--pass:#1a7f37;--warn:#b35900;--fail:#cf222e;--unknown:#6e7781;
--line:#d0d7de;--muted:#57606a;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.muted{color:var(--muted)}
.top{display:flex;flex-wrap:wrap;gap:16px;align-items:stretch}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;background:var(--bg);min-width:150px}
.card .big{font-size:30px;font-weight:600;line-height:1.2}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;
font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.badge.big{font-size:22px;padding:2px 14px;border-radius:14px}
.pass{background:var(--pass)}.warn{background:var(--warn)}.fail{background:var(--fail)}
.unknown{background:var(--unknown)}
.critical{background:var(--fail)}.warning{background:var(--warn)}
table{border-collapse:collapse;width:100%;margin:4px 0 8px;table-layout:fixed}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}
td.reason{white-space:pre-wrap;word-break:break-word}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num+td.reason,th.num+th{padding-left:24px}
.trends{display:flex;flex-wrap:wrap;gap:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:0 24px}
.category h3{display:flex;gap:8px;align-items:center}
td.name{word-break:break-word}
.w8{width:8%}.w10{width:10%}.w12{width:12%}.w16{width:16%}.w20{width:20%}.w30{width:30%}
.trend svg{display:block;margin-top:6px}
.trend polyline{fill:none;stroke:#0969da;stroke-width:1.8;stroke-linejoin:round}
.trend .base{stroke:var(--line);stroke-width:1}
footer{margin-top:32px;font-size:12px;color:var(--muted)}
a{color:#0969da}
"""


def refresh_seconds_for(cache_ttl_seconds: float) -> int:
    """The page's refresh period for a cache window: the window, kept within 5..60 s."""
    if not math.isfinite(cache_ttl_seconds):
        return _MAX_REFRESH
    return min(_MAX_REFRESH, max(_MIN_REFRESH, math.ceil(cache_ttl_seconds)))


def status_page(
    inputs: ViewInputs, history: Sequence[HistoryPoint], *, agent: str, refresh_seconds: int
) -> str:
    """The page for ``inputs``: renders the summary, health and (for its alerts) operational views."""
    summary = render_view("summary", inputs).document
    health = render_view("health", inputs).document
    alerts = render_view("operational", inputs).document["alerts"]
    return render_html(summary, health, history, agent, refresh_seconds, alerts=alerts)


def render_html(
    summary: Mapping[str, Any],
    health: Mapping[str, Any],
    history: Sequence[HistoryPoint],
    agent: str,
    refresh_seconds: int,
    *,
    alerts: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The status page of one collection: a complete HTML document (``<!DOCTYPE html>``...).

    ``summary`` and ``health`` are the documents of those views, ``history`` the runtime-wide trend
    points (oldest first), ``alerts`` the active alerts (as in the operational view). The page
    reloads itself every ``refresh_seconds`` (at least 1).
    """
    if isinstance(refresh_seconds, bool) or not isinstance(refresh_seconds, int) or refresh_seconds < 1:
        raise ValueError(f"refresh_seconds must be a positive integer, not {refresh_seconds!r}")
    base = f"/api/{quote(agent, safe='')}/v1/telemetry"
    status = _text(summary.get("status") or health.get("status") or "unknown")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f'<meta http-equiv="refresh" content="{refresh_seconds}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(status.upper())} · {_e(agent)} · telemetry</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        _header(summary, health, agent),
        _overview(summary),
        _trends(history),
        _alerts(alerts, summary),
        _categories(health),
        _buses(health),
        _footer(summary, base, refresh_seconds),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- sections ------------------------------------------------------------------------------------


def _header(summary: Mapping[str, Any], health: Mapping[str, Any], agent: str) -> str:
    status = summary.get("status", health.get("status"))
    reason = summary.get("reason", health.get("reason"))
    score = _mapping(summary.get("health_score")).get("score")
    filter_ = _mapping(summary.get("filter"))
    shown = {key: value for key, value in filter_.items() if value is not None}
    filtered = (
        '<p class="muted" id="filter">Filtered: '
        + ", ".join(f"{_e(key)}={_e(value)}" for key, value in shown.items())
        + "</p>"
        if shown
        else ""
    )
    disabled = (
        '<p class="muted" id="sdk-disabled">The OpenTelemetry SDK is disabled: nothing is recorded.</p>'
        if summary.get("sdk_disabled")
        else ""
    )
    if reason is None:
        reason = "all services pass" if status == "pass" else ""
    missing = _mapping(summary.get("health_score")).get("missing_inputs") or []
    missing_text = (
        f'<div class="muted">missing: {_e(", ".join(_text(item) for item in missing))}</div>'
        if missing
        else ""
    )
    return (
        "<header>"
        f'<h1>Runtime <span id="agent">{_e(agent)}</span></h1>'
        f'<p class="muted">Collection {_e(summary.get("timestamp", "unknown"))}'
        f" · age {_e(_format_seconds(summary.get('age_seconds')))}</p>"
        f"{filtered}{disabled}"
        '<div class="top">'
        f'<div class="card" id="status"><div class="label">Status</div>{_badge(status, big=True)}'
        f'<div class="reason" id="status-reason">{_e(reason)}</div></div>'
        f'<div class="card" id="score"><div class="label">Health score</div>'
        f'<div class="big">{_e(_format_number(score, 1))}</div>'
        f'<div class="muted">of 100</div>{missing_text}</div>'
        "</div></header>"
    )


def _overview(summary: Mapping[str, Any]) -> str:
    services = _mapping(summary.get("services"))
    requests = _mapping(summary.get("requests"))
    alerts = _mapping(summary.get("alerts"))
    cards = [
        ("Services", _format_count(services.get("total"))),
        ("Healthy", _format_count(services.get("healthy"))),
        ("Degraded", _format_count(services.get("degraded"))),
        ("Down", _format_count(services.get("down"))),
        ("Unknown", _format_count(services.get("unknown"))),
        ("Requests", _format_count(requests.get("total"))),
        ("Errors", _format_count(requests.get("errors"))),
        ("Error ratio", _format_ratio(requests.get("error_ratio"))),
        ("Request rate", _format_rate(requests.get("rate_per_second"))),
        ("Latency p95", _format_seconds(summary.get("latency_p95_seconds"))),
        ("Critical alerts", _format_count(alerts.get("critical"))),
        ("Warning alerts", _format_count(alerts.get("warning"))),
    ]
    body = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div><div class="big">{_e(value)}</div></div>'
        for label, value in cards
    )
    return f'<section id="overview"><h2>Overview</h2><div class="top">{body}</div></section>'


def _trends(history: Sequence[HistoryPoint]) -> str:
    series: list[tuple[str, str, Callable[[HistoryPoint], float | None], Callable[[object], str]]] = [
        ("request-rate", "Request rate", lambda point: point.request_rate, _format_rate),
        ("error-ratio", "Error ratio", lambda point: point.error_ratio, _format_ratio),
        ("latency-p95", "Latency p95", lambda point: point.latency_p95_seconds, _format_seconds),
    ]
    if len(history) >= 2:
        minutes = (history[-1].time_unix_nano - history[0].time_unix_nano) / 60e9
        span = f"last {len(history)} collections over {minutes:.1f} min, whole runtime"
    else:
        span = f"{len(history)} collection so far, whole runtime: a trend needs two"
    cards = []
    for key, title, pick, fmt in series:
        values = [pick(point) for point in history]
        known = [value for value in values if value is not None]
        latest = fmt(values[-1]) if values else fmt(None)
        low_high = f"min {fmt(min(known))} · max {fmt(max(known))}" if known else "no data yet"
        cards.append(
            f'<div class="card trend" id="trend-{key}"><div class="label">{_e(title)}</div>'
            f'<div class="big">{_e(latest)}</div>{_sparkline(values, title)}'
            f'<div class="muted">{_e(low_high)}</div></div>'
        )
    return (
        f'<section id="trends"><h2>Trends</h2><p class="muted">{_e(span)}</p>'
        f'<div class="trends">{"".join(cards)}</div></section>'
    )


def _alerts(alerts: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    if not alerts:
        counts = _mapping(summary.get("alerts"))
        total = sum(
            value for value in counts.values() if isinstance(value, int) and not isinstance(value, bool)
        )
        text = "No active alerts." if not total else f"{total} active alerts (details not available)."
        return f'<section id="alerts"><h2>Active alerts</h2><p class="muted">{_e(text)}</p></section>'
    rows = "".join(
        "<tr>"
        f"<td>{_badge(alert.get('severity'), kinds=_SEVERITIES)}</td>"
        f"<td>{_e(alert.get('component'))}</td>"
        f"<td>{_e(alert.get('rule'))}</td>"
        f'<td class="reason">{_e(alert.get("message"))}</td>'
        "</tr>"
        for alert in alerts
    )
    return (
        f'<section id="alerts"><h2>Active alerts ({len(alerts)})</h2><table><colgroup><col class="w10">'
        '<col class="w20"><col class="w16"><col></colgroup>'
        "<thead><tr><th>Severity</th><th>Component</th><th>Rule</th><th>Message</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _categories(health: Mapping[str, Any]) -> str:
    services = _mapping(health.get("services"))
    sections = []
    for name, raw in _mapping(health.get("categories")).items():
        category = _mapping(raw)
        counts = _mapping(category.get("counts"))
        rows = []
        for member in category.get("services") or []:
            state = _mapping(services.get(member))
            rows.append(
                "<tr>"
                f'<td class="name">{_e(member)}</td>'
                f"<td>{_badge(state.get('status'))}</td>"
                f'<td class="reason">{_e(state.get("reason") or "")}</td>'
                f"<td>{_e(state.get('snapshot_outcome') or '')}</td>"
                "</tr>"
            )
        tally = ", ".join(
            f"{_format_count(counts.get(key))} {label}"
            for key, label in (
                ("healthy", "pass"),
                ("degraded", "warn"),
                ("down", "fail"),
                ("unknown", "unknown"),
            )
            if counts.get(key)
        )
        reason = category.get("reason")
        sections.append(
            f'<div class="category"><h3>{_e(name)} {_badge(category.get("status"))}'
            f' <span class="muted">{_e(tally)}</span></h3>'
            + (f'<p class="reason">{_e(reason)}</p>' if reason else "")
            + '<table><colgroup><col class="w30"><col class="w12"><col><col class="w12"></colgroup>'
            "<thead><tr><th>Service</th><th>Status</th><th>Reason</th><th>Snapshot</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    body = "".join(sections) or '<p class="muted">No services.</p>'
    return f'<section id="categories"><h2>Services by category</h2><div class="grid">{body}</div></section>'


def _buses(health: Mapping[str, Any]) -> str:
    rows = []
    for name, raw in _mapping(health.get("buses")).items():
        bus = _mapping(raw)
        providers = [_mapping(provider) for provider in _mapping(bus.get("providers")).values()]
        by_status = {
            status: sum(1 for provider in providers if provider.get("status") == status)
            for status in ("pass", "warn", "fail", "unknown")
        }
        rows.append(
            "<tr>"
            f"<td>{_e(name)}</td>"
            f"<td>{_badge(bus.get('status'))}</td>"
            f'<td class="num">{len(providers)}</td>'
            + "".join(f'<td class="num">{count}</td>' for count in by_status.values())
            + f'<td class="reason">{_e(bus.get("reason") or "")}</td>'
            "</tr>"
        )
    if not rows:
        return '<section id="buses"><h2>Buses</h2><p class="muted">No buses.</p></section>'
    return (
        '<section id="buses"><h2>Buses</h2><table><colgroup><col class="w16"><col class="w10">'
        '<col class="w10"><col class="w8"><col class="w8"><col class="w8"><col class="w8"><col></colgroup>'
        "<thead><tr><th>Bus</th><th>Status</th>"
        '<th class="num">Providers</th><th class="num">pass</th><th class="num">warn</th>'
        '<th class="num">fail</th><th class="num">unknown</th><th>Reason</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _footer(summary: Mapping[str, Any], base: str, refresh_seconds: int) -> str:
    links = [
        (f"{base}?view=summary", "summary JSON"),
        (f"{base}?view=health", "health JSON"),
        (f"{base}/health", "health check"),
        ("/metrics", "Prometheus /metrics"),
    ]
    anchors = " · ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in links)
    return (
        f"<footer>Refreshes every {refresh_seconds} s · view {_e(summary.get('view', 'summary'))}"
        f" · {anchors}</footer>"
    )


# -- pieces --------------------------------------------------------------------------------------


def _sparkline(values: Sequence[float | None], title: str) -> str:
    """An inline SVG line of ``values`` (None: a gap); a flat baseline when fewer than two are known."""
    width, height, pad = _SPARK_WIDTH, _SPARK_HEIGHT, _SPARK_PAD
    known = [value for value in values if value is not None]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{_e(title)} trend">'
        f"<title>{_e(title)} trend</title>"
        f'<line class="base" x1="0" y1="{height - pad:g}" x2="{width:g}" y2="{height - pad:g}"/>'
    )
    if len(known) < 2:
        return head + "</svg>"
    low, high = min(0.0, min(known)), max(known)
    span = high - low or 1.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    segments: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = pad + index * step
        y = height - pad - (value - low) / span * (height - 2 * pad)
        segments[-1].append((x, y))
    lines = "".join(
        '<polyline points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'
        for points in segments
        if len(points) >= 2
    )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.6" fill="#0969da"/>'
        for points in segments
        if len(points) == 1
        for x, y in points
    )
    return head + lines + dots + "</svg>"


def _badge(status: object, *, big: bool = False, kinds: frozenset[str] = _STATUSES) -> str:
    text = _text(status) if status is not None else "unknown"
    kind = text if text in kinds else "unknown"  # the class comes from a fixed list, never the value
    size = " big" if big else ""
    return f'<span class="badge {kind}{size}">{_e(text)}</span>'


def _e(value: object) -> str:
    """``value`` as HTML text: every ``& < > " '`` escaped."""
    return html.escape(_text(value), quote=True)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _real(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _format_number(value: object, digits: int) -> str:
    number = _real(value)
    return "—" if number is None else f"{number:.{digits}f}"


def _format_count(value: object) -> str:
    number = _real(value)
    if number is None:
        return "—"
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def _format_ratio(value: object) -> str:
    number = _real(value)
    return "—" if number is None else f"{100 * number:.2f} %"


def _format_rate(value: object) -> str:
    number = _real(value)
    return "—" if number is None else f"{number:,.1f} /s"


def _format_seconds(value: object) -> str:
    number = _real(value)
    if number is None:
        return "—"
    if number < 1:
        return f"{1000 * number:.1f} ms"
    return f"{number:.2f} s"
