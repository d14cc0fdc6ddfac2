"""The API reference (mkdocs.yml, docs/) builds with --strict, as ``make docs`` builds it, so a
docstring or a ``:::`` reference that breaks fails the suite rather than the next doc build."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a whole mkdocs build
@pytest.mark.timeout(300)
def test_api_reference_builds_strict_and_covers_the_public_api(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocstrings") is None and not os.environ.get("CI"):
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stderr, out.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "pipeline_ex.Runtime",
        "pipeline_ex.Runtime.run",
        "pipeline_ex.plugins.PluginManager",
        "pipeline_ex.plugins.PluginManager.load_plugin",
        "pipeline_ex.plugins.Plugin",
        "pipeline_ex.plugins.contracts.StepContext",
        "pipeline_ex.plugins.contracts.ProviderView.select_all",
        "pipeline_ex.plugins.contracts.MetadataDict",
        "pipeline_ex.registries.ProviderRegistry",
        "pipeline_ex.testing.PluginHarness",
        "pipeline_ex.testing.ScriptedProvider",
        "pipeline_ex.errors.PluginError",
        "pipeline_ex.monitoring.service.Monitoring.snapshot",
        "pipeline_ex.monitoring.runs.RunRecord",
    ):
        assert f'id="{anchor}"' in api, anchor
    assert (site / "index.html").is_file()
