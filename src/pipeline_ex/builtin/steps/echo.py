"""``test_echo``: returns ``value`` or fails with ``error_message``; for tests and examples."""

from __future__ import annotations

from typing import Any


class TestEchoStep:
    __test__ = False  # not a pytest test class

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        if "error_message" in step:
            return {"success": False, "error": str(step["error_message"])}
        return step.get("value")
