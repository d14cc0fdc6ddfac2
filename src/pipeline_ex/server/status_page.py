"""``GET /``: the status page, rendered on the server from one monitoring snapshot.

No build step, no script, no external asset: one HTML document with inline CSS that
reloads itself with ``<meta http-equiv="refresh">`` (``?refresh=N`` seconds, ``0`` to
stop).  Every plugin-reported string goes through :mod:`pipeline_ex.server.html`, and the
``Content-Security-Policy`` header forbids scripts outright, so even a missed escape could
not run anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline_ex import __version__
from pipeline_ex.server.context import ServerContext
from pipeline_ex.server.html import Child, Markup, element, void
from pipeline_ex.server.readout import not_active

#: No script may run, no resource may load; inline styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
MAX_REFRESH_S = 3600
HISTORY_SHOWN = 10
RUNS_SHOWN = 20

STYLE = Markup(
    """
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #b35900; --bad: #c62828;
        --muted: #6b7280; --line: #d0d7de; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
.meta { color: var(--muted); margin-bottom: 1rem; }
table { border-collapse: collapse; margin: .25rem 0 .75rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left;
         vertical-align: top; }
th { font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; padding: 0 .4rem; border-radius: .3rem; border: 1px solid; }
.status-active, .status-ok { color: var(--ok); }
.status-degraded, .status-loading { color: var(--warn); }
.status-failed, .status-interrupted { color: var(--bad); }
.status-disabled, .status-unloaded { color: var(--muted); }
.error { color: var(--bad); white-space: pre-wrap; word-break: break-word; }
.plugin { border-top: 2px solid var(--line); margin-top: 1.25rem; }
.empty { color: var(--muted); font-style: italic; }
"""
)


def _text(value: Any, empty: str = "-") -> str:
    return empty if value is None or value == "" else str(value)


def _when(value: Any) -> Markup | str:
    """An ISO-8601 time to the second (UTC says so), the exact value in ``datetime``."""
    if not isinstance(value, str):
        return _text(value, "never")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a time after all: shown as it came (escaped)
    if moment.utcoffset() == timedelta(0):
        shown = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    else:
        shown = moment.strftime("%Y-%m-%d %H:%M:%S %z").strip()
    return element("time", shown, datetime=value)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _status(status: Any, **attributes: str) -> Markup:
    text = _text(status)
    return element("span", text, class_=f"status status-{text}", **attributes)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Child]], numeric: set[int]) -> Markup:
    head = element("tr", [element("th", h) for h in headers])
    body = [
        element(
            "tr",
            [
                element("td", cell, class_="num" if i in numeric else None)
                for i, cell in enumerate(row)
            ],
        )
        for row in rows
    ]
    return element("table", element("thead", head), element("tbody", body))


def _codes(errors_by_code: Mapping[str, int] | None) -> str:
    if not errors_by_code:
        return ""
    return " (" + ", ".join(f"{code}: {n}" for code, n in sorted(errors_by_code.items())) + ")"


def _health(health: Mapping[str, Any] | None) -> Markup:
    health = health or {}
    ok = health.get("ok")
    verdict = "ok" if ok is True else "failing" if ok is False else "not checked"
    return element(
        "span",
        element("span", verdict, class_="status-ok" if ok else "error" if ok is False else None),
        f" {health['message']}" if health.get("message") else None,
        void("br"),
        element("small", "checked ", _when(health.get("checked_at"))),
    )


def _overview(plugins: Sequence[Mapping[str, Any]]) -> Markup:
    rows = [
        [
            element("a", p["name"], href=f"#plugin-{p['name']}"),
            _status(p["status"], data_plugin=str(p["name"])),
            _text(p.get("version")),
            _ms(None if p.get("load_seconds") is None else p["load_seconds"] * 1000),
            p.get("calls", 0),
            f"{p.get('errors', 0)}{_codes(p.get('errors_by_code'))}",
            _ms(p.get("p50_ms")),
            _ms(p.get("p99_ms")),
            _health(p.get("health")),
            element("span", _text(p.get("last_error"), ""), class_="error"),
        ]
        for p in plugins
    ]
    headers = [
        "plugin", "status", "version", "load ms", "calls", "errors", "p50 ms", "p99 ms",
        "health", "last error",
    ]  # fmt: skip
    return _table(headers, rows, numeric={3, 4, 6, 7})


def _components(components: Sequence[Mapping[str, Any]]) -> Markup:
    if not components:
        return element("p", "no components", class_="empty")
    rows = [
        [
            c.get("kind"),
            c.get("name"),
            c.get("calls", 0),
            f"{c.get('errors', 0)}{_codes(c.get('errors_by_code'))}",
            _ms(c.get("p50_ms")),
            _ms(c.get("p99_ms")),
        ]
        for c in components
    ]
    return _table(["kind", "name", "calls", "errors", "p50 ms", "p99 ms"], rows, {2, 4, 5})


def _history(history: Sequence[Mapping[str, Any]]) -> Markup:
    if not history:
        return element("p", "no transitions recorded", class_="empty")
    shown = list(reversed(history))[:HISTORY_SHOWN]  # newest first
    rows = [[_when(h.get("at")), _status(h.get("status")), h.get("reason")] for h in shown]
    return _table(["at", "status", "reason"], rows, numeric=set())


def _plugin_section(p: Mapping[str, Any]) -> Markup:
    facts = (
        f"isolation {_text(p.get('isolation'))} · loads {p.get('loads', 0)} · "
        f"restarts {p.get('restarts', 0)}"
    )
    return element(
        "section",
        element("h3", p["name"], " ", _status(p["status"]), " ", _text(p.get("version"), "")),
        element("p", facts, class_="meta"),
        element("p", "last error: ", element("span", p["last_error"], class_="error"))
        if p.get("last_error")
        else None,
        _components(p.get("components") or []),
        element("h4", "health history"),
        _history(p.get("history") or []),
        id=f"plugin-{p['name']}",
        class_="plugin",
        data_plugin=str(p["name"]),
    )


def _runs(runs: Sequence[Mapping[str, Any]]) -> Markup:
    if not runs:
        return element("p", "no runs yet", class_="empty")
    rows = [
        [
            _when(r.get("started_at")),
            r.get("workflow"),
            r.get("source"),
            _status(r.get("outcome")),
            f"{float(r['duration_s']):.3f}" if r.get("duration_s") is not None else "-",
            r.get("steps"),
            ", ".join(r.get("step_types") or []),
            ", ".join(r.get("providers") or []),
            element(
                "span",
                f"[{r['error_code']}] " if r.get("error_code") else None,
                _text(r.get("error"), ""),
                class_="error",
            ),
        ]
        for r in runs[:RUNS_SHOWN]
    ]
    headers = [
        "started", "workflow", "source", "outcome", "seconds", "steps", "step types",
        "providers", "error",
    ]  # fmt: skip
    return _table(headers, rows, numeric={4, 5})


def render(snapshot: Mapping[str, Any], refresh_s: int) -> str:
    """The whole page for one snapshot (``as_dict()`` of the monitoring snapshot)."""
    plugins: list[Mapping[str, Any]] = list(snapshot.get("plugins") or [])
    failing = not_active([dict(p) for p in plugins])
    verdict = (
        element("span", "all enabled plugins active", class_="status-ok")
        if not failing
        else element("span", f"{len(failing)} plugin(s) not active", class_="error")
    )
    refresh = f"refreshes every {refresh_s} s" if refresh_s else "automatic refresh off"
    head = element(
        "head",
        void("meta", charset="utf-8"),
        void("meta", name="viewport", content="width=device-width, initial-scale=1"),
        void("meta", http_equiv="refresh", content=str(refresh_s)) if refresh_s else None,
        element("title", "pipeline-ex status"),
        element("style", STYLE),
    )
    body = element(
        "body",
        element("h1", "pipeline-ex status"),
        element(
            "p",
            f"pipeline-ex {__version__} · snapshot ",
            _when(snapshot.get("taken_at")),
            f" · {refresh} · ",
            verdict,
            class_="meta",
        ),
        element("h2", "Plugins"),
        _overview(plugins) if plugins else element("p", "no plugins", class_="empty"),
        [_plugin_section(p) for p in plugins],
        element("h2", "Recent runs"),
        _runs(list(snapshot.get("runs") or [])),
    )
    return "<!doctype html>\n" + element("html", head, body, lang="en")


def _refresh(request: Request, default: int) -> int:
    text = request.query_params.get("refresh")
    if text is None:
        return default
    try:
        return max(0, min(MAX_REFRESH_S, int(text)))
    except ValueError:
        return default


def routes(context: ServerContext) -> list[Route]:
    def page(request: Request) -> Response:
        text = render(context.readout.snapshot(), _refresh(request, context.settings.refresh_s))
        return Response(
            text,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    return [Route("/", page, methods=["GET"])]
