"""The typed contracts (``pipeline_ex.plugins.contracts``): the engine's real objects fit them,
and ``mypy --strict`` catches a plugin written against them with a wrong signature."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pipeline_ex.plugins as plugins_api
from pipeline_ex import Runtime
from pipeline_ex.plugins import contracts
from pipeline_ex.workflow.context import ExecutionContext

ROOT = Path(__file__).resolve().parents[2]
TEXT_TOOLS_SRC = ROOT / "examples" / "plugins" / "text_tools" / "src"


def _members(protocol: type) -> set[str]:
    """The names a Protocol asks for (public names plus the container dunders)."""
    dunders = {"__contains__", "__iter__", "__len__"}
    return {n for n in vars(protocol) if not n.startswith("_") or n in dunders} - {
        "__protocol_attrs__"
    }


def _context(runtime: Runtime, tmp_path: Path) -> ExecutionContext:
    return ExecutionContext(
        executor=runtime.executor,
        workflow={"name": "t", "steps": []},
        mode="mock",
        base_dir=tmp_path,
        output_dir=tmp_path / "out",
    )


def test_contracts_are_exported_from_pipeline_ex_plugins() -> None:
    for name in contracts.__all__:
        assert getattr(plugins_api, name) is getattr(contracts, name), name
        assert name in plugins_api.__all__


def test_registries_define_no_second_copy_of_the_contracts() -> None:
    """contracts.py is the one home: the registries no longer carry their own Protocols."""
    for module in ("steps", "providers", "__init__"):
        source = (ROOT / "src" / "pipeline_ex" / "registries" / f"{module}.py").read_text()
        assert not re.search(r"^class (Step|Provider)\(Protocol\)", source, re.M), module


def test_execution_context_offers_every_step_context_member(
    runtime: Runtime, tmp_path: Path
) -> None:
    context = _context(runtime, tmp_path)
    missing = sorted(n for n in _members(contracts.StepContext) if not hasattr(context, n))
    assert missing == []
    step_types = context.step_types
    assert sorted(n for n in _members(contracts.StepTypesView) if not hasattr(step_types, n)) == []


def test_context_providers_offer_every_provider_view_member(
    runtime: Runtime, tmp_path: Path
) -> None:
    providers = _context(runtime, tmp_path).providers
    if not hasattr(providers, "select_all"):
        pytest.skip("the ranked provider view (select_all) has not landed on this branch")
    assert sorted(n for n in _members(contracts.ProviderView) if not hasattr(providers, n)) == []


def test_runtime_checkable_contracts_recognise_builtin_components(runtime: Runtime) -> None:
    assert isinstance(runtime.steps.get("test_echo"), contracts.Step)
    assert isinstance(runtime.providers.get("mock_claude"), contracts.Provider)
    assert not isinstance(object(), contracts.Step)
    assert not isinstance(object(), contracts.Provider)


def test_metadata_dict_keys_are_what_the_host_reads() -> None:
    keys = contracts.MetadataDict.__required_keys__ | contracts.MetadataDict.__optional_keys__
    assert contracts.MetadataDict.__required_keys__ == {"name", "version"}
    assert keys == {
        "name",
        "version",
        "api_version",
        "description",
        "dependencies",
        "conflicts",
        "permissions",
        "capabilities",
        "config_schema",
    }


_GOOD = """
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.plugins import (
    MetadataDict, Plugin, ProviderEntry, Step, StepContext, StepTypeEntry,
)


class Upper:
    def execute(self, step: dict[str, Any], context: StepContext) -> dict[str, Any]:
        reply = context.providers.select(["echo"]).query(str(step["text"]), {})
        return {"success": True, "text": str(reply["text"]).upper(), "mode": context.mode}


class Echo:
    priority = 5

    def query(self, prompt: str, options: dict[str, Any]) -> Mapping[str, Any]:
        return {"text": prompt, "success": True, "cost": 0.0}


class GoodPlugin(Plugin):
    def get_metadata(self, state: Any) -> MetadataDict:
        return {"name": "good", "version": "1.0", "dependencies": ["other>=1"],
                "config_schema": {"type": "object"}}

    def get_step_types(self, state: Any) -> list[StepTypeEntry]:
        return [("upper", Upper), ("upper2", Upper())]

    def get_providers(self, state: Any) -> list[ProviderEntry]:
        return [("echo", Echo(), ["echo"])]


step: Step = Upper()
"""

# Each wrong line ends with "# BAD": mypy must report an error on every one of them, and
# on no other line.
_BAD = """
from __future__ import annotations

from typing import Any

from pipeline_ex.plugins import (
    MetadataDict, Plugin, Provider, ProviderEntry, Step, StepContext, StepTypeEntry,
)


class NoContext:
    def execute(self, step: dict[str, Any]) -> Any:
        return step


class TextReply:
    def query(self, prompt: str, options: dict[str, Any]) -> str:
        return prompt


class Misuses:
    def execute(self, step: dict[str, Any], context: StepContext) -> Any:
        context.providers.pick(["echo"])  # BAD
        return context.build_prompt("static text")  # BAD


class BadPlugin(Plugin):
    def get_metadata(self, state: Any) -> MetadataDict:
        return {"name": "bad", "verison": "1.0"}  # BAD

    def get_step_types(self, state: Any) -> list[StepTypeEntry]:
        return [("no_context", NoContext())]  # BAD

    def get_providers(self, state: Any) -> list[ProviderEntry]:
        return [("text", TextReply(), ["echo"])]  # BAD


step: Step = NoContext()  # BAD
provider: Provider = TextReply()  # BAD
metadata: MetadataDict = {"name": "x", "version": "1", "dependencies": "a>=1"}  # BAD
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wrong_plugin_signatures_are_caught_by_mypy(tmp_path: Path) -> None:
    """The point of typed contracts: mypy --strict flags each wrong signature (and passes the
    example plugin and a correct sample)."""
    (tmp_path / "good_sample.py").write_text(textwrap.dedent(_GOOD))
    (tmp_path / "bad_sample.py").write_text(textwrap.dedent(_BAD))
    env = {**os.environ, "MYPYPATH": f"{ROOT / 'src'}{os.pathsep}{TEXT_TOOLS_SRC}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(tmp_path / "good_sample.py"),
            str(tmp_path / "bad_sample.py"),
            str(TEXT_TOOLS_SRC / "pipeline_ex_text_tools"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode in (0, 1), out.stderr  # 2: mypy itself could not run
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    flagged = {
        int(m.group(2))
        for m in (re.match(r"(.*?):(\d+): error:", e) for e in errors)
        if m and m.group(1).endswith("bad_sample.py")
    }
    elsewhere = [e for e in errors if not e.split(":", 1)[0].endswith("bad_sample.py")]
    assert elsewhere == [], out.stdout
    bad_lines = textwrap.dedent(_BAD).splitlines()
    expected = {i for i, line in enumerate(bad_lines, start=1) if line.endswith("# BAD")}
    assert flagged == expected, out.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_execution_context_satisfies_step_context_for_mypy(
    runtime: Runtime, tmp_path: Path
) -> None:
    """What the engine hands a step is, statically, a StepContext: a step typed against the
    contract accepts the real context (the harness's ``step_context()``) without a cast."""
    if not hasattr(_context(runtime, tmp_path).providers, "select_all"):
        pytest.skip("the ranked provider view (select_all) has not landed on this branch")
    sample = tmp_path / "conformance.py"
    sample.write_text(
        "from pipeline_ex.plugins import StepContext\n"
        "from pipeline_ex.workflow.context import ExecutionContext\n\n\n"
        "def as_contract(context: ExecutionContext) -> StepContext:\n"
        "    return context\n"
    )
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mc")]
    out = subprocess.run(
        [*mypy, str(sample)],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
