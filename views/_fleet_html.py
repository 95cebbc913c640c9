"""The fleet status page: agent counts by state, fleet totals, and one row per agent (links to its page).

A complete HTML document from the typed fleet summary (:class:`FleetModel`, which the JSON document
reads too: nothing re-parses a document); every value is escaped, no script runs (the same content
security policy as the agent's page).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import quote

from telemetry_otel.views._fleet_summary import AGENT_STATES, FleetModel

__all__ = ["render_fleet_html"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:left}"
    ".healthy{color:#17803d}.degraded{color:#b45309}.down{color:#b91c1c}.unknown{color:#555}"
    ".cards{display:flex;gap:1rem;margin:1rem 0}.card{border:1px solid #ddd;padding:.6rem 1rem}"
    ".muted{color:#666}"
)


def _e(value: object) -> str:
    return html.escape("unknown" if value is None else str(value))


def _number(value: object, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "unknown"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def render_fleet_html(model: FleetModel, refresh_seconds: int) -> str:
    """The page of one fleet summary ``model``; it reloads every ``refresh_seconds``."""
    counts = model.counts
    total = len(model.agents)
    cards = "".join(
        f'<div class="card {state}" id="agents-{state}"><div>{_e(state)}</div>'
        f"<strong>{_e(counts.get(state))}</strong></div>"
        for state in AGENT_STATES
    )
    rows = []
    for row in model.agents:
        link = f"/api/{quote(row.name, safe='')}/v1/telemetry?format=html"
        why = row.down_reason or row.unknown_reason or row.reason or ""
        if row.missing:
            why = f"{why}; missing: {', '.join(row.missing)}".lstrip("; ")
        rows.append(
            f'<tr id="agent-{_e(row.name)}"><td><a href="{_e(link)}">{_e(row.name)}</a></td>'
            f'<td class="{_e(row.state)}">{_e(row.state)}</td>'
            f"<td>{_number(row.requests)}</td><td>{_number(row.errors)}</td>"
            f"<td>{_number(row.rate_per_second)}</td>"
            f"<td>{_number(row.latency_p95_seconds)}</td>"
            f"<td>{_number(row.last_collection_age_seconds)}</td><td>{_e(why)}</td></tr>"
        )
    read_at = datetime.fromtimestamp(model.time_unix, UTC).isoformat().replace("+00:00", "Z")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        f"<title>Fleet · {total} agents · telemetry</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>Fleet of {total} agents</h1>",
        f'<p class="muted">Read {_e(read_at)} from {_e(model.source)} in '
        f"{model.queries} requests · rates over {_number(model.settings.window_seconds)} s</p>",
        f'<div class="cards">{cards}</div>',
        f'<p id="totals">Requests {_number(model.requests)} · '
        f"errors {_number(model.errors)} · {_number(model.rate_per_second)} /s · "
        f"p95 {_number(model.latency_p95_seconds)} s</p>",
        "<table><thead><tr><th>agent</th><th>state</th><th>requests</th><th>errors</th><th>rate /s</th>"
        "<th>p95 s</th><th>last collection age s</th><th>why</th></tr></thead>",
        f"<tbody>{''.join(rows)}</tbody></table>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
