"""The fleet status page: agent counts by state, fleet totals, and one row per agent (links to its page).

A complete HTML document from the fleet summary document; every value is escaped, no script runs
(the same content security policy as the agent's page).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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


def render_fleet_html(document: Mapping[str, Any], refresh_seconds: int) -> str:
    """The page of one fleet summary ``document``; it reloads every ``refresh_seconds``."""
    agents = document.get("agents", {})
    requests = document.get("requests", {})
    cards = "".join(
        f'<div class="card {state}" id="agents-{state}"><div>{_e(state)}</div>'
        f"<strong>{_e(agents.get(state))}</strong></div>"
        for state in ("healthy", "degraded", "down", "unknown")
    )
    rows = []
    for name, entry in document.get("by_agent", {}).items():
        link = f"/api/{quote(name, safe='')}/v1/telemetry?format=html"
        agent_requests = entry.get("requests", {})
        why = entry.get("down_reason") or entry.get("reason") or ""
        missing = entry.get("missing") or []
        if missing:
            why = f"{why}; missing: {', '.join(missing)}".lstrip("; ")
        rows.append(
            f'<tr id="agent-{_e(name)}"><td><a href="{_e(link)}">{_e(name)}</a></td>'
            f'<td class="{_e(entry.get("state"))}">{_e(entry.get("state"))}</td>'
            f"<td>{_number(agent_requests.get('total'))}</td><td>{_number(agent_requests.get('errors'))}</td>"
            f"<td>{_number(agent_requests.get('rate_per_second'))}</td>"
            f"<td>{_number(entry.get('latency_p95_seconds'))}</td>"
            f"<td>{_number(entry.get('last_collection_age_seconds'))}</td><td>{_e(why)}</td></tr>"
        )
    source = document.get("source", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        f"<title>Fleet · {_e(agents.get('total'))} agents · telemetry</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>Fleet of {_e(agents.get('total'))} agents</h1>",
        f'<p class="muted">Read {_e(document.get("timestamp"))} from {_e(source.get("url"))} in '
        f"{_e(source.get('queries'))} queries · rates over {_e(document.get('window_seconds'))} s</p>",
        f'<div class="cards">{cards}</div>',
        f'<p id="totals">Requests {_number(requests.get("total"))} · '
        f"errors {_number(requests.get('errors'))} · {_number(requests.get('rate_per_second'))} /s · "
        f"p95 {_number(document.get('latency_p95_seconds'))} s</p>",
        "<table><thead><tr><th>agent</th><th>state</th><th>requests</th><th>errors</th><th>rate /s</th>"
        "<th>p95 s</th><th>last collection age s</th><th>why</th></tr></thead>",
        f"<tbody>{''.join(rows)}</tbody></table>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
