"""The status page: the summary and health of one collection as one self-contained HTML document.

The page reads the typed model of the views (built once per collection and filter), never a JSON
document. ``render_html`` is pure (no I/O, no clock): the same inputs and history give the same page.
Every value taken from the model is escaped with :func:`html.escape` (names, reasons, statuses, numbers
alike) and statuses pick a CSS class from a fixed list, so a reason such as
``<script>alert(1)</script>`` is shown as text and never becomes markup. The page needs no
external asset: inline CSS, inline SVG trend lines, no JavaScript at all, and a
``Content-Security-Policy`` that forbids scripts and every fetch. It refreshes itself with
``<meta http-equiv="refresh">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from urllib.parse import quote

from telemetry_otel.views._build import build_model
from telemetry_otel.views._history import HistoryPoint
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._numbers import iso
from telemetry_otel.views._state import STATUSES, BusState, Model
from telemetry_otel.views._thresholds import Alert

__all__ = ["HTML_VIEWS", "page", "refresh_seconds_for", "render_html"]

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


def render_html(
    inputs: ViewInputs,
    history: Sequence[HistoryPoint],
    agent: str,
    refresh_seconds: int,
    *,
    age_seconds: float | None = None,
    view: str = "summary",
) -> str:
    """The status page of one collection: a complete HTML document (``<!DOCTYPE html>``...).

    The page shows the model of ``inputs`` (built once: status, score, traffic, alerts, categories
    and buses), ``history`` the runtime-wide trend points (oldest first), and reloads itself every
    ``refresh_seconds`` (at least 1). ``age_seconds`` is the collection's age as shown (default: as of
    ``inputs.now_unix_nano``), ``view`` the view named in the footer.
    """
    return page(build_model(inputs), history, agent, refresh_seconds, age_seconds=age_seconds, view=view)


def page(
    model: Model,
    history: Sequence[HistoryPoint],
    agent: str,
    refresh_seconds: int,
    *,
    age_seconds: float | None = None,
    view: str = "summary",
) -> str:
    """:func:`render_html` from a model already built (the app shares one model per collection)."""
    if isinstance(refresh_seconds, bool) or not isinstance(refresh_seconds, int) or refresh_seconds < 1:
        raise ValueError(f"refresh_seconds must be a positive integer, not {refresh_seconds!r}")
    base = f"/api/{quote(agent, safe='')}/v1/telemetry"
    age_shown = model.age_seconds if age_seconds is None else age_seconds
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f'<meta http-equiv="refresh" content="{refresh_seconds}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(model.status.upper())} · {_e(agent)} · telemetry</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        _header(model, agent, age_shown),
        _overview(model),
        _trends(history),
        _alerts(model.alerts),
        _categories(model),
        _buses(model.buses),
        _footer(view, base, refresh_seconds),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- sections ------------------------------------------------------------------------------------


def _header(model: Model, agent: str, age_seconds: float) -> str:
    inputs = model.inputs
    chosen = (("category", inputs.category), ("service", inputs.service))
    shown = {key: value for key, value in chosen if value is not None}
    filtered = (
        '<p class="muted" id="filter">Filtered: '
        + ", ".join(f"{_e(key)}={_e(value)}" for key, value in shown.items())
        + "</p>"
        if shown
        else ""
    )
    disabled = (
        '<p class="muted" id="sdk-disabled">The OpenTelemetry SDK is disabled: nothing is recorded.</p>'
        if inputs.collection.sdk_disabled
        else ""
    )
    reason = model.reason
    if reason is None:
        reason = "all services pass" if model.status == "pass" else ""
    missing = [item.name for item in model.score_inputs if item.score is None]
    missing_text = f'<div class="muted">missing: {_e(", ".join(missing))}</div>' if missing else ""
    return (
        "<header>"
        f'<h1>Runtime <span id="agent">{_e(agent)}</span></h1>'
        f'<p class="muted">Collection {_e(iso(inputs.collection.time_unix_nano))}'
        f" · age {_e(_format_seconds(age_seconds))}</p>"
        f"{filtered}{disabled}"
        '<div class="top">'
        f'<div class="card" id="status"><div class="label">Status</div>{_badge(model.status, big=True)}'
        f'<div class="reason" id="status-reason">{_e(reason)}</div></div>'
        f'<div class="card" id="score"><div class="label">Health score</div>'
        f'<div class="big">{_e(_format_number(model.score, 1))}</div>'
        f'<div class="muted">of 100</div>{missing_text}</div>'
        "</div></header>"
    )


def _overview(model: Model) -> str:
    counts, alerts = model.counts, model.alert_counts()
    p95 = None if model.latency is None else model.latency.quantile(0.95)
    cards = [
        ("Services", _format_count(counts.get("total"))),
        ("Healthy", _format_count(counts.get("healthy"))),
        ("Degraded", _format_count(counts.get("degraded"))),
        ("Down", _format_count(counts.get("down"))),
        ("Unknown", _format_count(counts.get("unknown"))),
        ("Requests", _format_count(model.requests)),
        ("Errors", _format_count(model.errors)),
        ("Error ratio", _format_ratio(model.error_ratio)),
        ("Request rate", _format_rate(model.request_rate)),
        ("Latency p95", _format_seconds(p95)),
        ("Critical alerts", _format_count(alerts["critical"])),
        ("Warning alerts", _format_count(alerts["warning"])),
    ]
    body = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div><div class="big">{_e(value)}</div></div>'
        for label, value in cards
    )
    return f'<section id="overview"><h2>Overview</h2><div class="top">{body}</div></section>'


def _trends(history: Sequence[HistoryPoint]) -> str:
    series: list[tuple[str, str, Callable[[HistoryPoint], float | None], Callable[[float | None], str]]] = [
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


def _alerts(alerts: Sequence[Alert]) -> str:
    if not alerts:
        return '<section id="alerts"><h2>Active alerts</h2><p class="muted">No active alerts.</p></section>'
    rows = "".join(
        "<tr>"
        f"<td>{_badge(alert.severity, kinds=_SEVERITIES)}</td>"
        f"<td>{_e(alert.component)}</td>"
        f"<td>{_e(alert.rule)}</td>"
        f'<td class="reason">{_e(alert.message)}</td>'
        "</tr>"
        for alert in alerts
    )
    return (
        f'<section id="alerts"><h2>Active alerts ({len(alerts)})</h2><table><colgroup><col class="w10">'
        '<col class="w20"><col class="w16"><col></colgroup>'
        "<thead><tr><th>Severity</th><th>Component</th><th>Rule</th><th>Message</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _categories(model: Model) -> str:
    services = {state.name: state for state in model.services}
    sections = []
    for category in model.categories:
        rows = []
        for member in category.members:
            state = services.get(member)
            rows.append(
                "<tr>"
                f'<td class="name">{_e(member)}</td>'
                f"<td>{_badge(None if state is None else state.status)}</td>"
                f'<td class="reason">{_e(None if state is None else state.reason)}</td>'
                f"<td>{_e(None if state is None else state.outcome)}</td>"
                "</tr>"
            )
        tally = ", ".join(
            f"{_format_count(category.counts.get(key))} {label}"
            for key, label in (
                ("healthy", "pass"),
                ("degraded", "warn"),
                ("down", "fail"),
                ("unknown", "unknown"),
            )
            if category.counts.get(key)
        )
        sections.append(
            f'<div class="category"><h3>{_e(category.name)} {_badge(category.status)}'
            f' <span class="muted">{_e(tally)}</span></h3>'
            + (f'<p class="reason">{_e(category.reason)}</p>' if category.reason else "")
            + '<table><colgroup><col class="w30"><col class="w12"><col><col class="w12"></colgroup>'
            "<thead><tr><th>Service</th><th>Status</th><th>Reason</th><th>Snapshot</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    body = "".join(sections) or '<p class="muted">No services.</p>'
    return f'<section id="categories"><h2>Services by category</h2><div class="grid">{body}</div></section>'


def _buses(buses: Sequence[BusState]) -> str:
    rows = []
    for bus in buses:
        statuses = ["unknown" if state is None else state.status for state in bus.provider_states.values()]
        rows.append(
            "<tr>"
            f"<td>{_e(bus.name)}</td>"
            f"<td>{_badge(bus.status)}</td>"
            f'<td class="num">{len(statuses)}</td>'
            + "".join(f'<td class="num">{statuses.count(status)}</td>' for status in STATUSES)
            + f'<td class="reason">{_e(bus.reason)}</td>'
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


def _footer(view: str, base: str, refresh_seconds: int) -> str:
    links = [
        (f"{base}?view=summary", "summary JSON"),
        (f"{base}?view=health", "health JSON"),
        (f"{base}/health", "health check"),
        ("/metrics", "Prometheus /metrics"),
    ]
    anchors = " · ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in links)
    return f"<footer>Refreshes every {refresh_seconds} s · view {_e(view)} · {anchors}</footer>"


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
