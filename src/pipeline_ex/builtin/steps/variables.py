"""``set_variable``: write values into the run's state, read back as ``{{state.NAME}}``."""

from __future__ import annotations

from typing import Any


class SetVariableStep:
    def semantic_check(self, step: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        if not isinstance(step.get("variables"), dict) or not step["variables"]:
            message = "set_variable needs a non-empty 'variables' mapping"
            if "variable" in step or "value" in step:
                message += " ('variable'/'value' is not pipeline_ex's set_variable form)"
            return [(("variables",), message)]
        return []

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        scope = step.get("scope", "global")
        variables = dict(step["variables"])
        for name, value in variables.items():
            context.set_variable(name, value, scope)
        return {"success": True, "variables": variables, "scope": scope}
