"""Sample plugins and components for the plugin tests (imported by name, not via conftest)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.plugins import Plugin


class EchoStep:
    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return {"success": True, "text": f"{self.tag}{step.get('value', '')}"}


class ConstProvider:
    def __init__(self, text: str = "const") -> None:
        self.text = text

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": self.text, "success": True, "cost": 0.0}


def make_plugin(
    name: str,
    /,
    *,
    version: str = "1.0.0",
    steps: Mapping[str, Any] | None = None,
    providers: Mapping[str, tuple[Any, list[str]]] | None = None,
    extensions: Mapping[str, Mapping[str, Any]] | None = None,
    dependencies: list[str] | None = None,
    conflicts: list[str] | None = None,
    capabilities: list[str] | None = None,
    events: list[str] | None = None,
    init_error: BaseException | None = None,
    terminate_error: BaseException | None = None,
    **metadata: Any,
) -> type[Plugin]:
    """Build a Plugin subclass whose lifecycle calls are recorded in ``events``."""
    log = events if events is not None else []

    class Sample(Plugin):
        def init(self, config: Mapping[str, Any]) -> Any:
            log.append(f"init:{name}")
            if init_error is not None:
                raise init_error
            return {"config": dict(config)}

        def terminate(self, state: Any) -> None:
            log.append(f"terminate:{name}")
            if terminate_error is not None:
                raise terminate_error

        def get_metadata(self, state: Any) -> Mapping[str, Any]:
            return {
                "name": name,
                "version": version,
                "api_version": 1,
                "description": f"sample {name}",
                "dependencies": dependencies or [],
                "conflicts": conflicts or [],
                "capabilities": capabilities or [],
                **metadata,
            }

        def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
            return list((steps or {}).items())

        def get_providers(self, state: Any) -> list[tuple[str, Any, list[str]]]:
            return [(n, p, c) for n, (p, c) in (providers or {}).items()]

        def get_schema_extensions(self, state: Any) -> list[tuple[str, Mapping[str, Any]]]:
            return list((extensions or {}).items())

    Sample.__name__ = Sample.__qualname__ = f"Sample_{name}"
    return Sample


def write_plugin_dir(
    root: Path,
    name: str,
    source: str,
    *,
    version: str = "1.0.0",
    module: str = "plugin:ThePlugin",
    extra: str = "",
) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "plugin.yaml").write_text(
        f"name: {name}\nversion: '{version}'\nmodule: {module}\n{extra}"
    )
    stem = module.partition(":")[0]
    (directory / f"{stem}.py").write_text(textwrap.dedent(source))
    return directory
