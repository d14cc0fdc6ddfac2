"""Test-wide set-up: offline, hermetic, no user caches touched.

DSPy and litellm fetch files from the internet at import or first call unless told not to;
these variables must be set before either is imported, hence module level here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from pipeline_ex import Runtime

_SCRATCH = Path(tempfile.mkdtemp(prefix="pipeline-ex-tests-"))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
os.environ["DSPY_CACHEDIR"] = str(_SCRATCH / "dspy-cache")
os.environ["PIPELINE_EX_CACHE_DIR"] = str(_SCRATCH / "pipeline-ex-cache")
for _name in (
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "PIPELINE_EX_MODE",
    "PIPELINE_EX_PLUGINS",
    "ANTHROPIC_BASE_URL",
    "GEMINI_BASE_URL",
):
    os.environ.pop(_name, None)

# Hypothesis fails an example that runs past its deadline (200 ms by default), which a busy
# machine causes at random; no property here is about speed, so no deadline.  A failure
# prints the blob that replays it (@reproduce_failure), since examples differ run to run.
settings.register_profile("pipeline-ex", deadline=None, print_blob=True)
settings.load_profile("pipeline-ex")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "pipeline_ex_corpus"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    from pipeline_ex import Runtime

    rt = Runtime()
    try:
        yield rt
    finally:
        rt.close()
