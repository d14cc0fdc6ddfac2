"""``/metrics``, ``/healthz``, ``/plugins`` and ``/plugins/NAME`` over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

YAML = {"Content-Type": "application/yaml"}
SLEEP = "workflow:\n  name: nap\n  steps:\n    - {name: z, type: sleep, seconds: 0.01}\n"


def test_metrics_parse_as_prometheus_text(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        assert client.post("/runs", content=SLEEP, headers=YAML).status_code == 200
        reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(reply.text))
    samples = [s for family in families for s in family.samples]
    assert samples, "no samples"
    labelled = [s for s in samples if s.labels.get("plugin") == "flippy"]
    assert labelled, "no series for the flippy plugin"
    assert any(s.labels.get("component") == "sleep" and s.value >= 1 for s in labelled), (
        "the sleep step's call was not counted"
    )


def test_healthz_is_200_while_every_enabled_plugin_is_active(
    serve_runtime: Callable[..., Any], flag_file: Path
) -> None:
    with serve_runtime() as live, live.client() as client:
        healthy = client.get("/healthz")
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["status"] == "ok" and healthy.json()["not_active"] == []

        flag_file.write_text("disk on fire", encoding="utf-8")
        live.server.config.app.state.context.runtime.monitoring.check_health("flippy")
        sick = client.get("/healthz")
        assert sick.status_code == 503
        (failing,) = sick.json()["not_active"]
        assert failing["name"] == "flippy" and failing["status"] == "degraded"
        assert "disk on fire" in str(failing)

        flag_file.unlink()
        live.server.config.app.state.context.runtime.monitoring.check_health("flippy")
        assert client.get("/healthz").status_code == 200


def test_plugins_and_one_plugin_as_json(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        listed = client.get("/plugins").json()["plugins"]
        names = [p["name"] for p in listed]
        assert "core_steps" in names and "flippy" in names
        one = client.get("/plugins/flippy").json()
        assert one["version"] == "1.2.3" and one["status"] == "active"
        assert {c["name"] for c in one["components"]} >= {"sleep", "block", "fail"}
        missing = client.get("/plugins/nobody")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_loaded"
        assert "flippy" in missing.json()["error"]["message"]
        wrong_method = client.delete("/plugins/flippy")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"
