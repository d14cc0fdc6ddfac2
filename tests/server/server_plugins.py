"""Plugins for the server tests, importable by module path (``server_plugins:Flippy``) so
that a ``pipeline-ex serve`` subprocess can load them from a plugin config too."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.plugins import Plugin

#: What in-process tests use to hold a ``block`` step until they let it go, by key.
GATES: dict[str, threading.Event] = {}


class SleepStep:
    """Sleeps ``seconds`` (a run that is still going when the test needs it to be); creates
    ``started_file`` first, when given, so a test knows the run is under way."""

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        if step.get("started_file"):
            Path(str(step["started_file"])).touch()
        time.sleep(float(step.get("seconds", 0.1)))
        return {"success": True, "text": f"slept {step.get('seconds')}"}


class BlockStep:
    """Waits until the test sets ``GATES[step['gate']]`` (at most 30 s)."""

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        released = GATES[str(step["gate"])].wait(30)
        return {"success": released, "text": "released" if released else "gave up"}


class FailStep:
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return {"success": False, "error": str(step.get("why", "asked to fail"))}


class Flippy(Plugin):
    """Healthy until the file named by ``flag_file`` exists; then its health check fails
    with that file's text as the message."""

    def init(self, config: Mapping[str, Any]) -> Any:
        return {"flag": Path(str(config["flag_file"]))}

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {"name": "flippy", "version": "1.2.3", "description": "health from a file"}

    def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
        return [("sleep", SleepStep), ("block", BlockStep), ("fail", FailStep)]

    def health_check(self, state: Any) -> Any:
        flag: Path = state["flag"]
        if flag.exists():
            raise RuntimeError(flag.read_text(encoding="utf-8"))
        return {"status": "ok"}


class Recorder(Plugin):
    """Depends on ``dependencies``; appends ``terminate:NAME`` to ``log_file`` (when given)
    on terminate, for the shutdown order checks."""

    def init(self, config: Mapping[str, Any]) -> Any:
        return dict(config)

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": state["name"],
            "version": "1.0.0",
            "dependencies": list(state.get("dependencies", [])),
        }

    def terminate(self, state: Any) -> None:
        if "log_file" not in state:
            return
        with open(state["log_file"], "a", encoding="utf-8") as log:
            log.write(f"terminate:{state['name']}\n")


class Scripty(Plugin):
    """Reports markup everywhere a plugin can: description, health message, errors."""

    PAYLOAD = "<script>alert('pwned')</script>"

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {"name": "scripty", "version": "6.6.6", "description": self.PAYLOAD}

    def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
        return [("scripty_fail", FailStep)]

    def health_check(self, state: Any) -> Any:
        raise RuntimeError(self.PAYLOAD)
