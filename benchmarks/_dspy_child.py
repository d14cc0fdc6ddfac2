"""One cold start-up, run by ``bench_dspy.py`` in a fresh interpreter.

Usage: ``_dspy_child.py PLUGIN_CONFIG|-``.  Prints one JSON line: nanoseconds from before
``pipeline_ex`` is imported until a Runtime is up, with the given plugin config (``-``: none,
the built-ins only), and whether DSPy got imported.
"""

from __future__ import annotations

import sys
import time

started = time.perf_counter_ns()
from pipeline_ex import Runtime  # noqa: E402

config = None if sys.argv[1] == "-" else sys.argv[1]
runtime = Runtime(plugin_config=config)
elapsed = time.perf_counter_ns() - started
failed = sorted(runtime.load_report.failed)
runtime.close()

import json  # noqa: E402

print(json.dumps({"ns": elapsed, "dspy": "dspy" in sys.modules, "failed": failed}))
