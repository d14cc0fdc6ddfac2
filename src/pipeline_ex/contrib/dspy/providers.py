"""The providers ``dspy_claude`` and ``dspy_gemini`` (the seed's DSPy provider callbacks).

They answer a plain prompt through a DSPy program (``prompt -> response``, DSPy's chat
format) over a *base* provider: a DSPy provider never reaches a model by itself, since every
language-model call must go through a provider of the pipeline's ProviderRegistry in the
run's mode, and only a step knows the run.  The caller passes that provider object in
``options["base_provider"]`` (a step gets it with ``context.provider_for("claude")``) and
the run's mode in ``options["mode"]``; the reply is the provider contract's mapping plus the
``dspy`` report.  Capabilities: ``dspy_optimization`` plus ``claude_compatible`` or
``gemini_compatible``, so ``context.providers.select([...])`` finds them.
"""

from __future__ import annotations

from typing import Any

from pipeline_ex.contrib.dspy.runner import DSPyState, engine_for, run_signature
from pipeline_ex.contrib.dspy.signatures import FieldSpec, SignatureSpec
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig
from pipeline_ex.errors import ProviderConfigurationError

PROMPT_SIGNATURE = SignatureSpec(
    inputs=(FieldSpec("prompt", "str", "the request"),),
    outputs=(FieldSpec("response", "str", "the answer to the request"),),
)
#: Options of this provider, not passed on to the base provider.
OWN_OPTIONS = ("base_provider", "base_provider_name", "mode")


class DSPyProvider:
    """A DSPy-formatted front of the ``claude`` or ``gemini`` family."""

    def __init__(self, family: str, state: DSPyState) -> None:
        self.family = family
        self.name = f"dspy_{family}"
        self.state = state

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        base = options.get("base_provider")
        if base is None or not callable(getattr(base, "query", None)):
            raise ProviderConfigurationError(
                f"{self.name} answers through a pipeline provider: pass it as "
                f"options['base_provider'] (a step gets it with "
                f"context.provider_for({self.family!r}))"
            )
        mode = str(options.get("mode") or "mock")
        base_name = str(options.get("base_provider_name") or getattr(base, "name", self.family))
        passed = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        task = self.state.task(
            f"{self.name}.prompt", PROMPT_SIGNATURE, StepDSPyConfig(optimization_enabled=False)
        )
        engine = engine_for(task, base, base_name, mode, passed)
        outputs, info = run_signature(self.state, task, {"prompt": prompt}, engine)
        return {
            "text": str(outputs["response"] or ""),
            "success": True,
            "cost": engine.cost,
            "provider": self.name,
            "dspy": info,
        }
