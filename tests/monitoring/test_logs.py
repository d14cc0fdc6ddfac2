"""Log records carry plugin, component, workflow and step; the JSON format."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from monitoring_samples import AsksProvider, Echo, plugin

from pipeline_ex import Runtime
from pipeline_ex.monitoring.log_context import ContextFilter
from pipeline_ex.monitoring.log_format import ContextTextFormatter, JsonFormatter


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def capture() -> Any:
    handler = Capture()
    logger = logging.getLogger("tests.monitoring.samples")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_records_inside_a_step_and_a_provider_name_their_context(capture: Capture) -> None:
    with Runtime() as rt:
        rt.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
        rt.plugins.load_plugin("asker", plugin("asker", steps={"ask": AsksProvider}))
        rt.run(
            {
                "workflow": {
                    "name": "chat",
                    "steps": [{"name": "q1", "type": "ask", "provider": "echo"}],
                }
            }
        )
        (run,) = rt.monitoring.runs()
    in_step, in_provider = capture.records
    assert (in_step.plugin, in_step.component, in_step.workflow, in_step.step) == (  # type: ignore[attr-defined]
        "asker",
        "ask",
        "chat",
        "q1",
    )
    assert (in_provider.plugin, in_provider.component, in_provider.step) == (  # type: ignore[attr-defined]
        "echoes",
        "echo",
        "q1",
    )
    assert in_step.run_id == run.id  # type: ignore[attr-defined]


def test_outside_a_run_the_fields_are_none_and_extra_wins(capture: Capture) -> None:
    logger = logging.getLogger("tests.monitoring.samples")
    logger.warning("plain")
    logger.warning("tagged", extra={"plugin": "mine"})
    plain, tagged = capture.records
    assert (plain.plugin, plain.workflow, plain.step) == (None, None, None)  # type: ignore[attr-defined]
    assert tagged.plugin == "mine"  # type: ignore[attr-defined]


def test_concurrent_runs_keep_their_own_context(capture: Capture) -> None:
    with Runtime() as rt:
        rt.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
        rt.plugins.load_plugin("asker", plugin("asker", steps={"ask": AsksProvider}))

        def run(name: str) -> None:
            step = {"name": f"step_{name}", "type": "ask", "provider": "echo"}
            rt.run({"workflow": {"name": name, "steps": [step]}})

        threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(capture.records) == 8
    for record in capture.records:
        assert record.step == f"step_{record.workflow}"  # type: ignore[attr-defined]


def test_json_and_text_formats() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    ContextFilter().filter(record)
    record.plugin = "p"  # type: ignore[attr-defined]
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "hello you" and document["level"] == "WARNING"
    assert document["plugin"] == "p" and document["step"] is None
    assert {"time", "logger", "component", "workflow", "run_id"} <= set(document)
    assert ContextTextFormatter().format(record) == "WARNING x: hello you [plugin=p]"


class FansOut:
    """Queries ``echo`` from ``context.map``'s helper threads (each item waits until two
    threads are in, so a helper surely takes one)."""

    def execute(self, step: Any, context: Any) -> Any:
        arrived = threading.Barrier(2, timeout=30)

        def ask(item: int) -> str:
            if item < 2:
                arrived.wait()
            reply: str = context.providers.get("echo").query(str(item), {})["text"]
            return reply

        return {"success": True, "texts": context.map(ask, [0, 1, 2, 3], 2)}


def test_context_follows_the_run_into_map_helper_threads(capture: Capture) -> None:
    with Runtime() as rt:
        rt.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
        rt.plugins.load_plugin("fans", plugin("fans", steps={"fan": FansOut}))
        rt.run({"workflow": {"name": "fan", "steps": [{"name": "out", "type": "fan"}]}})
        (run,) = rt.monitoring.runs()
    assert run.providers == ("echo",)
    threads = {record.threadName for record in capture.records}
    assert "pipeline-ex:parallel" in threads
    for record in capture.records:
        assert (record.workflow, record.step, record.plugin) == ("fan", "out", "echoes")  # type: ignore[attr-defined]
