"""The status page's HTML: everything a plugin reports is escaped, scripts are forbidden by
the Content-Security-Policy, and the page reloads itself."""

from __future__ import annotations

import html.parser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_plugins import Scripty

from pipeline_ex import Runtime
from pipeline_ex.server.html import Markup, element, escape
from pipeline_ex.server.status_page import render

PAYLOAD = Scripty.PAYLOAD


class Tags(html.parser.HTMLParser):
    """Collects the tags a browser's parser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def hostile_snapshot() -> dict[str, Any]:
    plugin = {
        "name": f'x"><img src=x onerror=alert(1)>{PAYLOAD}',
        "version": PAYLOAD,
        "status": "degraded",
        "isolation": "in_process",
        "load_seconds": 0.01,
        "loads": 1,
        "restarts": 0,
        "calls": 3,
        "errors": 1,
        "errors_by_code": {PAYLOAD: 1},
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "last_error": PAYLOAD,
        "health": {"ok": False, "message": PAYLOAD, "checked_at": PAYLOAD},
        "history": [{"at": "2025-01-01T00:00:00+00:00", "status": "degraded", "reason": PAYLOAD}],
        "components": [
            {"kind": "step_type", "name": PAYLOAD, "calls": 3, "errors": 1,
             "errors_by_code": {}, "p50_ms": None, "p99_ms": None}
        ],
    }  # fmt: skip
    run = {
        "id": "1",
        "workflow": PAYLOAD,
        "started_at": PAYLOAD,
        "duration_s": 0.5,
        "outcome": "failed",
        "error_code": PAYLOAD,
        "error": PAYLOAD,
        "steps": 1,
        "step_types": [PAYLOAD],
        "providers": [PAYLOAD],
        "source": PAYLOAD,
    }
    return {"plugins": [plugin], "runs": [run], "taken_at": PAYLOAD}


def test_every_reported_string_is_escaped() -> None:
    page = render(hostile_snapshot(), refresh_s=5)
    tags = parse(page)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert not [name for name, _ in tags.attributes if name.startswith("on")]
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 10  # every field, not only one


def test_the_page_reloads_itself_unless_told_not_to() -> None:
    snapshot = {"plugins": [], "runs": [], "taken_at": "now"}
    assert '<meta http-equiv="refresh" content="7">' in render(snapshot, refresh_s=7)
    assert 'http-equiv="refresh"' not in render(snapshot, refresh_s=0)


def test_element_escapes_text_and_attributes_but_not_markup() -> None:
    built = element("p", "<b>", Markup("<i>ok</i>"), title='"quoted"', hidden=True, data_x=None)
    assert built == '<p title="&quot;quoted&quot;" hidden>&lt;b&gt;<i>ok</i></p>'
    assert escape(Markup("<x>")) == "<x>" and escape("<x>") == "&lt;x&gt;"


def test_the_served_page_escapes_a_hostile_plugin(
    serve_runtime: Callable[..., Any], server_runtime: Runtime
) -> None:
    server_runtime.plugins.load_plugin("scripty", Scripty)
    server_runtime.monitoring.check_health("scripty")
    with serve_runtime() as live, live.client() as client:
        reply = client.get("/", params={"refresh": 0})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    csp = reply.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp  # no script source allowed
    tags = parse(reply.text)
    assert "script" not in tags.tags
    assert "&lt;script&gt;" in reply.text
    assert 'data-plugin="scripty"' in reply.text and "degraded" in reply.text


@pytest.mark.parametrize(("query", "expected"), [("3", "3"), ("99999", "3600"), ("x", "5")])
def test_the_refresh_interval_is_bounded(
    serve_runtime: Callable[..., Any], query: str, expected: str, tmp_path: Path
) -> None:
    with serve_runtime() as live, live.client() as client:
        page = client.get("/", params={"refresh": query}).text
    assert f'<meta http-equiv="refresh" content="{expected}">' in page


def test_times_are_shown_to_the_second_with_the_exact_value_kept() -> None:
    snapshot = {"plugins": [], "runs": [], "taken_at": "2025-03-04T05:06:07.891011+00:00"}
    page = render(snapshot, refresh_s=0)
    assert (
        '<time datetime="2025-03-04T05:06:07.891011+00:00">2025-03-04 05:06:07 UTC</time>' in page
    )
