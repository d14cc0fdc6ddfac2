"""The step types ``dspy_claude``, ``dspy_gemini`` and ``dspy_chain``.

``dspy_claude``/``dspy_gemini``::

    - name: answer
      type: dspy_claude
      dspy_signature:
        input_fields: [{name: question, type: str}]
        output_fields: [{name: answer, type: str, description: "a short answer"}]
      dspy_config: {module: predict, few_shot_examples: 3}
      inputs: {question: "{{steps.ask.text}}"}

The result holds the output fields, ``text`` (the single output field, or the outputs as JSON),
``success``, ``cost`` and ``dspy: {optimized, cache_hit, optimizer, num_demos, lm_calls,
fallback, reason}``.  ``dspy_chain`` runs ``signatures`` (each ``{name, dspy_signature,
dspy_config?}``) in order; every link takes its inputs by field name from the step's
``inputs`` and the outputs of the links before it.  Its training records are scoped to
``STEP.LINK`` (or to no step).

The provider is the one the run's mode gives the family (``mock_claude`` in mock mode,
``claude`` in live mode).  If DSPy fails at run time (an answer it cannot parse, a bug) the
step falls back to the plain ``claude``/``gemini`` step type with the inputs written out as a
prompt, and says so in ``dspy.fallback`` and ``dspy.reason``.  Configuration mistakes (a bad
signature, a missing input) fail the step instead: falling back would hide them; so does a
provider's own failure (a rate limit, a bad key), with the provider's error code, since the
plain step would hit the same provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pipeline_ex.contrib.dspy.runner import DSPyState, engine_for, run_signature
from pipeline_ex.contrib.dspy.settings import DSPyConfigError
from pipeline_ex.contrib.dspy.signatures import SignatureError, SignatureSpec, parse_signature
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig, parse_step_config
from pipeline_ex.errors import InvalidInputError, ProviderError
from pipeline_ex.log import get_logger

logger = get_logger(__name__)

FAMILIES = ("claude", "gemini")
Problems = list[tuple[tuple[str | int, ...], str]]
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _inputs(step: Mapping[str, Any]) -> Mapping[str, Any]:
    value = step.get("inputs", {})
    if not isinstance(value, Mapping):
        raise DSPyConfigError(
            f"step {step.get('name')!r}: inputs must be a mapping of field -> value"
        )
    return value


def render_prompt(signature: SignatureSpec, inputs: Mapping[str, Any]) -> str:
    """The fallback's prompt: the task, the input values, and the answer format asked for."""
    lines = [signature.instructions or "Produce the output fields from the input fields.", ""]
    for f in signature.inputs:
        value = inputs.get(f.name)
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{f.name}: {shown}")
    lines.append("")
    described = [
        f"{f.name} ({f.type})" + (f": {f.description}" if f.description else "")
        for f in signature.outputs
    ]
    if len(signature.outputs) == 1:
        lines.append(f"Answer with the value of {described[0]} only.")
    else:
        lines.append("Answer with a JSON object with these keys: " + "; ".join(described) + ".")
    return "\n".join(lines)


def read_answer(signature: SignatureSpec, text: str) -> dict[str, Any]:
    """The fallback's output fields from the model's text (best effort, never raises)."""
    names = signature.output_names
    text = text.strip()
    if len(names) == 1:
        return {names[0]: text}
    fenced = _FENCE.match(text)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        return {name: data.get(name) for name in names}
    return {names[0]: text, **dict.fromkeys(names[1:])}


def _text(outputs: Mapping[str, Any]) -> str:
    if len(outputs) == 1:
        value = next(iter(outputs.values()))
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(dict(outputs), ensure_ascii=False, default=str)


def _provider_error(exc: BaseException) -> ProviderError | None:
    """The provider's own error behind what DSPy raised (DSPy wraps it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ProviderError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _SignatureStep:
    """What ``dspy_claude``/``dspy_gemini`` and each link of ``dspy_chain`` share."""

    def __init__(self, state: DSPyState) -> None:
        self.state = state

    def preflight(self, step: Mapping[str, Any], context: Any) -> None:
        """Live mode without a key fails before the first step, as for ``claude`` steps."""
        provider = context.provider_for(self.family(step))
        check = getattr(provider, "preflight", None)
        if callable(check):
            check()

    def family(self, step: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def run_link(
        self,
        step: Mapping[str, Any],
        context: Any,
        name: str,
        signature: SignatureSpec,
        config: StepDSPyConfig,
        inputs: Mapping[str, Any],
        scope: str,
    ) -> dict[str, Any]:
        missing = [n for n in signature.input_names if n not in inputs]
        if missing:
            raise DSPyConfigError(
                f"step {name!r}: no value for input field(s) {', '.join(missing)}; give them "
                "in the step's inputs"
            )
        family = self.family(step)
        provider = context.provider_for(family)
        provider_name = context.provider_name(family)
        options = {"step_name": name}
        model = (step.get(f"{family}_options") or {}).get("model") or step.get("model")
        if model:
            options["model"] = model
        task = self.state.task(name, signature, config, scope)
        engine = engine_for(task, provider, provider_name, context.mode, options)
        try:
            outputs, info = run_signature(self.state, task, inputs, engine)
        except InvalidInputError:
            raise  # the user's configuration: fail the step, do not hide it
        except Exception as exc:
            provider_error = _provider_error(exc)
            if provider_error is not None:
                raise provider_error from exc  # the provider failed, not DSPy: its code
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("dspy step %s fell back to a plain %s step: %s", name, family, reason)
            return self.fallback(step, context, name, signature, inputs, reason, engine.calls)
        return {
            "success": True,
            **outputs,
            "text": _text(outputs),
            "cost": engine.cost,
            "dspy": info,
        }

    def fallback(
        self,
        step: Mapping[str, Any],
        context: Any,
        name: str,
        signature: SignatureSpec,
        inputs: Mapping[str, Any],
        reason: str,
        calls: int,
    ) -> dict[str, Any]:
        family = self.family(step)
        plain: dict[str, Any] = {
            "name": name,
            "type": family,
            "prompt": [{"type": "static", "content": render_prompt(signature, inputs)}],
        }
        options_key = f"{family}_options"
        if step.get(options_key):
            plain[options_key] = dict(step[options_key])
        reply = dict(context.step_types.get(family).execute(plain, context))
        outputs = read_answer(signature, str(reply.get("text") or ""))
        return {
            **reply,
            **outputs,
            "dspy": {
                "optimized": False,
                "cache_hit": False,
                "optimizer": None,
                "num_demos": 0,
                "lm_calls": calls + 1,
                "fallback": True,
                "reason": reason,
            },
        }


def _check_signature(
    raw: Any, path: tuple[str | int, ...], problems: Problems
) -> SignatureSpec | None:
    try:
        return parse_signature(raw, ".".join(map(str, ("dspy_signature", *path[1:]))))
    except SignatureError as exc:
        problems.append((path, exc.message))
        return None


class DSPyStep(_SignatureStep):
    """One DSPy signature answered by a claude or gemini provider (optimizable)."""

    provider_family = "claude"

    def family(self, step: Mapping[str, Any]) -> str:
        return self.provider_family

    def semantic_check(self, step: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        signature = _check_signature(step.get("dspy_signature"), ("dspy_signature",), problems)
        try:
            parse_step_config(step.get("dspy_config"))
        except DSPyConfigError as exc:
            problems.append((("dspy_config",), exc.message))
        inputs = step.get("inputs", {})
        if not isinstance(inputs, Mapping):
            problems.append((("inputs",), "inputs must be a mapping of input field -> value"))
        elif signature is not None:
            for missing in [n for n in signature.input_names if n not in inputs]:
                problems.append((("inputs",), f"no value for input field {missing!r}"))
            for extra in [k for k in inputs if k not in signature.input_names]:
                problems.append((("inputs", str(extra)), f"{extra!r} is not an input field"))
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        name = str(step.get("name"))
        signature = parse_signature(step.get("dspy_signature"), f"step {name!r}: dspy_signature")
        config = parse_step_config(
            step.get("dspy_config"),
            context.workflow.get("dspy_config"),
            f"step {name!r}: dspy_config",
        )
        return self.run_link(step, context, name, signature, config, _inputs(step), name)


class DSPyClaudeStep(DSPyStep):
    """One DSPy signature answered through the claude provider of the run's mode."""

    provider_family = "claude"


class DSPyGeminiStep(DSPyStep):
    """One DSPy signature answered through the gemini provider of the run's mode."""

    provider_family = "gemini"


class DSPyChainStep(_SignatureStep):
    """Several DSPy signatures in sequence; outputs feed later inputs by field name."""

    def family(self, step: Mapping[str, Any]) -> str:
        family = step.get("provider", "claude")
        if family not in FAMILIES:
            raise DSPyConfigError(
                f"step {step.get('name')!r}: provider must be claude or gemini, got {family!r}"
            )
        return str(family)

    def _links(self, step: Mapping[str, Any], problems: Problems) -> list[tuple[str, Any, Any]]:
        raw = step.get("signatures")
        if not isinstance(raw, list) or not raw:
            problems.append((("signatures",), "dspy_chain needs a non-empty list 'signatures'"))
            return []
        links, names = [], set()
        for index, link in enumerate(raw):
            if not isinstance(link, Mapping) or not isinstance(link.get("name"), str):
                problems.append(
                    (("signatures", index), "each link needs a 'name' and a dspy_signature")
                )
                continue
            extra = sorted(set(link) - {"name", "dspy_signature", "dspy_config"})
            if extra:
                problems.append((("signatures", index), f"unknown key(s) {', '.join(extra)}"))
            if link["name"] in names:
                problems.append((("signatures", index, "name"), f"link {link['name']!r} twice"))
            names.add(link["name"])
            links.append((link["name"], link.get("dspy_signature"), link.get("dspy_config")))
        return links

    def semantic_check(self, step: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        if step.get("provider", "claude") not in FAMILIES:
            problems.append((("provider",), "provider must be claude or gemini"))
        inputs = step.get("inputs", {})
        if not isinstance(inputs, Mapping):
            problems.append((("inputs",), "inputs must be a mapping of field -> value"))
            inputs = {}
        known = set(inputs)
        for index, (name, raw_signature, raw_config) in enumerate(self._links(step, problems)):
            at: tuple[str | int, ...] = ("signatures", index, "dspy_signature")
            signature = _check_signature(raw_signature, at, problems)
            try:
                parse_step_config(raw_config)
            except DSPyConfigError as exc:
                problems.append((("signatures", index, "dspy_config"), exc.message))
            if signature is None:
                continue
            for missing in [n for n in signature.input_names if n not in known]:
                problems.append(
                    (
                        at,
                        f"link {name!r}: input field {missing!r} is neither a step input nor "
                        "an output of an earlier link",
                    )
                )
            known.update(signature.output_names)
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        name = str(step.get("name"))
        problems: Problems = []
        links = self._links(step, problems)
        if problems:
            raise DSPyConfigError(f"step {name!r}: " + "; ".join(m for _, m in problems))
        pool: dict[str, Any] = dict(_inputs(step))
        results: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        for link, raw_signature, raw_config in links:
            where = f"step {name!r} link {link!r}"
            signature = parse_signature(raw_signature, f"{where}: dspy_signature")
            config = parse_step_config(
                raw_config, context.workflow.get("dspy_config"), f"{where}: dspy_config"
            )
            result = self.run_link(
                step, context, f"{name}.{link}", signature, config, pool, f"{name}.{link}"
            )
            results[link] = result
            if result.get("success") is False:
                break
            produced = {n: result.get(n) for n in signature.output_names}
            pool.update(produced)
            outputs.update(produced)
        reports = [r["dspy"] for r in results.values()]
        return {
            "success": all(r.get("success") is not False for r in results.values()),
            **outputs,
            "text": _text(outputs) if outputs else "",
            "cost": sum(float(r.get("cost") or 0.0) for r in results.values()),
            "links": results,
            "dspy": {
                "optimized": all(r["optimized"] for r in reports),
                "cache_hit": all(r["cache_hit"] for r in reports),
                "optimizer": next((r["optimizer"] for r in reports if r["optimizer"]), None),
                "num_demos": sum(int(r["num_demos"]) for r in reports),
                "lm_calls": sum(int(r["lm_calls"]) for r in reports),
                "fallback": any(r["fallback"] for r in reports),
                "reason": "; ".join(f"{k}: {v['dspy']['reason']}" for k, v in results.items()),
            },
        }


__all__ = [
    "DSPyChainStep",
    "DSPyClaudeStep",
    "DSPyGeminiStep",
    "read_answer",
    "render_prompt",
]
