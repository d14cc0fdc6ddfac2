"""One Runtime shared by many threads: runs are correct and independent."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_ex import Runtime

THREADS = 8
RUNS_PER_THREAD = 20

WORKFLOW: dict[str, Any] = {
    "workflow": {
        "name": "concurrent",
        "steps": [
            {
                "name": "who",
                "type": "set_variable",
                "variables": {"me": "{{inputs.thread}}", "count": 0},
            },
            {
                "name": "fan",
                "type": "for_loop",
                "iterator": "item",
                "data_source": "{{inputs.items}}",
                "parallel": True,
                "max_parallel": 3,
                "steps": [
                    {"name": "tag", "type": "test_echo", "value": "{{state.me}}:{{loop.item}}"},
                    {
                        "name": "ask",
                        "type": "claude",
                        "prompt": [
                            {"type": "static", "content": "T{{inputs.thread}} item {{loop.item}}"}
                        ],
                    },
                ],
            },
            {
                "name": "count",
                "type": "while_loop",
                "condition": "state.count < inputs.n",
                "max_iterations": 50,
                "steps": [
                    {
                        "name": "inc",
                        "type": "set_variable",
                        "variables": {"count": "{{state.count + 1}}"},
                    }
                ],
            },
            {
                "name": "summary",
                "type": "gemini",
                "prompt": [
                    {"type": "static", "content": "thread {{state.me}} counted"},
                    {"type": "previous_response", "step": "count", "extract": "count"},
                ],
                "output_to_file": "summary-{{inputs.thread}}-{{inputs.run}}.json",
            },
            {
                "name": "only_odd",
                "type": "test_echo",
                "value": "odd",
                "condition": "inputs.thread % 2 == 1",
            },
        ],
    }
}


class Noop:
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return None


def test_threads_share_a_runtime_without_sharing_state(tmp_path: Path) -> None:
    out = tmp_path / "out"
    errors: list[str] = []
    stop = threading.Event()

    with Runtime() as runtime:
        runtime.providers["mock_claude"].set_response_pattern(
            r"re:T\d+ item", {"text": "claude answered", "tokens": 1}
        )

        def churn() -> None:
            """Registry writes racing the runs: readers must keep a consistent view."""
            index = 0
            while not stop.is_set():
                runtime.steps.register_batch({f"churn_{index}": Noop()}, f"churn-{index}")
                runtime.steps.unregister_owner(f"churn-{index}")
                index += 1
                stop.wait(0.001)

        def worker(thread: int) -> int:
            done = 0
            for run_index in range(RUNS_PER_THREAD):
                items = [f"t{thread}-r{run_index}-{k}" for k in range(thread % 4 + 2)]
                n = thread + run_index % 3
                results = runtime.run(
                    WORKFLOW,
                    inputs={"thread": thread, "items": items, "n": n, "run": run_index},
                    output_dir=out,
                )
                iterations = results["fan"]["iterations"]
                if [it["tag"] for it in iterations] != [f"{thread}:{item}" for item in items]:
                    errors.append(f"thread {thread} saw tags {[it['tag'] for it in iterations]}")
                if any(it["ask"]["text"] != "claude answered" for it in iterations):
                    errors.append(f"thread {thread}: wrong claude reply")
                if results["count"]["count"] != n:
                    errors.append(f"thread {thread}: counted {results['count']['count']} != {n}")
                prompt = f"thread {thread} counted\n{n}"
                expected = f"Mock response for: {prompt[:50]}"
                if results["summary"]["text"] != expected:
                    errors.append(f"thread {thread}: summary {results['summary']['text']!r}")
                odd = results["only_odd"]
                if (thread % 2 == 1) != (odd == "odd"):
                    errors.append(f"thread {thread}: condition result {odd!r}")
                written = json.loads((out / f"summary-{thread}-{run_index}.json").read_text())
                if written != results["summary"]:
                    errors.append(f"thread {thread}: file differs from result")
                done += 1
            return done

        churner = threading.Thread(target=churn)
        churner.start()
        try:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                counts = list(pool.map(worker, range(THREADS)))
        finally:
            stop.set()
            churner.join()

    assert errors == []
    assert counts == [RUNS_PER_THREAD] * THREADS
    assert len(list(out.glob("summary-*.json"))) == THREADS * RUNS_PER_THREAD
    assert not [name for name in runtime.steps if name.startswith("churn_")]
