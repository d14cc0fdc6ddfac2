"""PluginHarness: a real Runtime plus the few calls a plugin's unit test needs.

Real objects rather than fakes: the plugin under test is loaded by the real plugin manager
(so a metadata or contract mistake fails the test the way it would fail a user), a step
runs through the real dispatch (templating, conditions, the guard, ``output_schema``), and
the step context is the engine's own ``ExecutionContext``.  Only the LLM is scripted.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.plugins.registry import PluginRecord
from pipeline_ex.runtime import Runtime
from pipeline_ex.testing.scripted import ProviderPlugin, Reply, ScriptedProvider
from pipeline_ex.workflow.context import ExecutionContext

#: The name a step gets when the test's step mapping has none.
DEFAULT_STEP_NAME = "step_under_test"


def fresh_runtime(mode: str = "mock") -> Runtime:
    """Built-in plugins only, in ``mode``; ``PIPELINE_EX_PLUGINS`` and ``PIPELINE_EX_MODE`` are
    ignored so that a developer's environment cannot change what a test sees."""
    return Runtime(plugin_config={"plugins": {}}, mode=mode)


def _plugin_name(plugin: Any) -> str:
    """The name a plugin gives itself before ``init`` (the contract requires it to answer)."""
    describe = getattr(plugin, "get_metadata", None)
    if isinstance(plugin, type):
        describe = getattr(plugin(), "get_metadata", None)
    if not callable(describe):
        raise TypeError(f"{plugin!r} has no get_metadata: pass name= explicitly")
    metadata = describe(None)
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        raise TypeError(f"{plugin!r}.get_metadata(None) gives no 'name': pass name= explicitly")
    return name


def _as_document(workflow: Mapping[str, Any] | list[Mapping[str, Any]]) -> dict[str, Any]:
    """A whole document, a ``workflow:`` mapping, or just a list of steps."""
    if isinstance(workflow, list):
        return {"workflow": {"name": "test_workflow", "steps": list(workflow)}}
    if "workflow" in workflow:
        return dict(workflow)
    return {"workflow": {"name": "test_workflow", **workflow}}


class PluginHarness:
    """Everything bound to one Runtime and one scratch folder.

    ``base_dir`` is where ``file`` prompt parts are read from; ``output_dir`` (under it) is
    where ``output_to_file`` writes.
    """

    def __init__(self, runtime: Runtime, base_dir: Path) -> None:
        self.runtime = runtime
        self.base_dir = Path(base_dir)
        self.output_dir = self.base_dir / "outputs"

    # -- plugins and providers ------------------------------------------------------------
    def load_plugin(
        self,
        plugin: Any,
        config: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        dependencies: Iterable[str] = (),
    ) -> PluginRecord:
        """Load ``plugin`` (a ``Plugin`` subclass or instance, a module, or a reference
        string) through the real manager; a refusal raises its ``PluginError``."""
        if name is None:
            if isinstance(plugin, str):
                raise TypeError("a plugin given by reference needs name=")
            name = _plugin_name(plugin)
        self.runtime.plugins.load_plugin(
            name, plugin, dict(config or {}), dependencies=tuple(dependencies)
        )
        return self.runtime.plugins.get_plugin(name)

    def scripted_provider(
        self,
        replies: Iterable[Reply] | Mapping[str, Reply],
        *,
        name: str = "scripted",
        capabilities: Iterable[str] = ("text_generation",),
        priority: int = 0,
    ) -> ScriptedProvider:
        """Register a ``ScriptedProvider`` as ``name`` (owned by a plugin ``scripted_NAME``,
        unloaded with the runtime) and return it, to read ``prompts`` afterwards."""
        provider = ScriptedProvider(replies, name=name, priority=priority)
        self.load_plugin(
            ProviderPlugin(f"scripted_{name}", name, provider, capabilities),
            name=f"scripted_{name}",
        )
        return provider

    # -- contexts and runs ----------------------------------------------------------------
    def step_context(
        self,
        *,
        results: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | None = None,
        loop: Mapping[str, Any] | None = None,
        mode: str | None = None,
    ) -> ExecutionContext:
        """The engine's own context, as if the steps before had produced ``results``.

        ``workflow`` is the ``workflow:`` mapping (for plugin sections such as
        ``text_tools: {max_words: 3}``); its ``variables`` seed ``variables`` when not given.
        """
        body = {"name": "test_workflow", "steps": [], **dict(workflow or {})}
        return ExecutionContext(
            executor=self.runtime.executor,
            workflow=body,
            mode=mode or self.runtime.mode,
            base_dir=self.base_dir,
            output_dir=self.output_dir,
            inputs=inputs,
            results=ChainMap(dict(results or {})),
            variables=ChainMap(dict(variables)) if variables is not None else None,
            loop=loop,
        )

    def run_step(
        self,
        step: Mapping[str, Any],
        context: ExecutionContext | None = None,
        **context_options: Any,
    ) -> Any:
        """Run one step mapping through the real dispatch and return its result.

        ``type`` is required, ``name`` defaults to ``step_under_test``; templates, the
        condition and ``output_schema`` apply.  A failure raises ``StepFailedError``.
        ``context_options`` go to ``step_context`` when no context is given.
        """
        if context is None:
            context = self.step_context(**context_options)
        elif context_options:
            raise TypeError("give either a context or step_context options, not both")
        full = {"name": DEFAULT_STEP_NAME, **dict(step)}
        return self.runtime.executor.run_step(full, context, "step")

    def run_workflow(
        self,
        workflow: Mapping[str, Any] | list[Mapping[str, Any]],
        *,
        inputs: Mapping[str, Any] | None = None,
        mode: str | None = None,
    ) -> dict[str, Any]:
        """Validate and run a small workflow (a document, a ``workflow:`` mapping, or a list
        of steps) exactly as ``pipeline-ex run`` would; returns results by step name."""
        return self.runtime.run(
            _as_document(workflow), inputs=inputs, mode=mode, output_dir=self.output_dir
        )
