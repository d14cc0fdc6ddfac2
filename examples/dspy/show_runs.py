"""Run the DSPy example twice and say what DSPy did each time (``make run`` calls this).

The first run compiles each optimizable signature with BootstrapFewShot (the cache was
cleared just before), the second loads the compiled programs from the cache.  Mock mode,
offline: the mock provider answers in DSPy's format from ``training_data/``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipeline_ex import Runtime

HERE = Path(__file__).resolve().parent


def describe(name: str, result: dict[str, Any]) -> str:
    report = result["dspy"]
    if report["fallback"]:
        what = f"fell back to the plain step ({report['reason']})"
    elif report["cache_hit"]:
        what = f"cache hit ({report['num_demos']} demos)"
    elif report["optimized"]:
        what = f"compiled with {report['optimizer']} ({report['num_demos']} demos)"
    else:
        what = f"unoptimized ({report['reason']})"
    return f"  {name}: {what}, {report['lm_calls']} LM call(s) -> {result['text']}"


def main() -> int:
    output_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".outputs")
    for attempt in ("first run", "second run"):
        print(attempt)
        with Runtime(plugin_config=HERE / "plugin_config.yaml", mode="mock") as runtime:
            results = runtime.run(HERE / "qa_pipeline.yaml", output_dir=output_dir)
        for name, result in results.items():
            if "dspy" not in result:
                continue
            links = result.get("links") or {}
            if not links:
                print(describe(name, result))
            for link, link_result in links.items():
                print(describe(f"{name}.{link}", link_result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
