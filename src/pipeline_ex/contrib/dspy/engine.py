"""The LM engine: DSPy's language-model calls, answered by a pipeline_ex provider.

DSPy 3.4's supported extension point is a custom engine given to ``dspy.LM(model,
engine=...)``: an object with ``complete(Request) -> Response`` (subclassing
``BaseLM.forward`` is deprecated).  ``ProviderEngine`` turns DSPy's canonical request (a system
text and chat messages, demos included) into one provider ``query(prompt, options)``: the
system text becomes the ``system_prompt`` option the live providers send as the system
prompt, and the messages become the prompt.  So every call is a call of a provider taken
from the pipeline's ProviderRegistry, in the run's mode, counted there and here; litellm is
never imported on this path.

``make_lm`` builds the ``dspy.LM`` with DSPy's own response cache off (every call reaches the
provider and is counted) and no retries of its own (the live providers retry).  One engine
serves one step execution, so its call counter is that step's.  Sampling settings DSPy asks
for (``temperature`` while bootstrapping) are not forwarded: the provider and the step's
options decide them, as for any pipeline step (Claude 5 models refuse non-default sampling).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_ex.errors import ProviderError

#: The options key that asks a mock provider to answer in DSPy's adapter format; its value
#: is ``{"examples": [...]}``: the step's training examples, answered from when the input
#: matches (see ``pipeline_ex.builtin.providers.mock``).
ADAPTER_OPTION = "dspy_adapter"


def flatten_messages(messages: Sequence[tuple[str, str]]) -> str:
    """Chat messages -> one prompt.  A single user message is sent as it is; a conversation
    (DSPy puts each demo in as a user/assistant pair) is written out turn by turn."""
    if len(messages) == 1 and messages[0][0] == "user":
        return messages[0][1]
    blocks = [
        f"{'Assistant' if role == 'assistant' else 'User'}:\n{text}" for role, text in messages
    ]
    return "\n\n".join(blocks)


class ProviderEngine:
    """``complete(Request) -> Response`` over one pipeline_ex provider (thread-safe)."""

    def __init__(
        self,
        provider: Any,
        provider_name: str,
        options: Mapping[str, Any] | None = None,
        adapter_hint: Mapping[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self.provider_name = provider_name
        self.options = dict(options or {})
        self.adapter_hint = dict(adapter_hint) if adapter_hint is not None else None
        self._lock = threading.Lock()
        self.calls = 0
        self.cost = 0.0

    def _prompt(self, request: Any) -> tuple[str, str | None]:
        system = request.system
        if system is not None and not isinstance(system, str):
            system = "".join(getattr(part, "text", "") or "" for part in system)
        messages = [(str(m.role), m.text or "") for m in request.messages]
        return flatten_messages(messages), system or None

    def complete(self, request: Any) -> Any:
        from dspy.clients.engines.base import validate_request
        from dspy.lm15 import Message, Response, TextPart, Usage

        validate_request(request)
        prompt, system = self._prompt(request)
        options = dict(self.options)
        if system:
            options["system_prompt"] = system
        if request.config.max_tokens:
            options.setdefault("max_tokens", request.config.max_tokens)
        if self.adapter_hint is not None:
            options[ADAPTER_OPTION] = self.adapter_hint
        with self._lock:
            self.calls += 1
        reply = self.provider.query(prompt, options)
        if not isinstance(reply, Mapping):
            raise ProviderError(
                f"provider {self.provider_name!r} answered {type(reply).__name__}, not a mapping"
            )
        if reply.get("success") is False:
            raise ProviderError(
                f"provider {self.provider_name!r} failed: {reply.get('error') or 'no reason'}",
                code=str(reply.get("code") or "provider_error"),
            )
        with self._lock:
            self.cost += float(reply.get("cost") or 0.0)
        usage = reply.get("usage") or {}
        tokens_in = int(usage.get("input_tokens") or 0)
        tokens_out = int(usage.get("output_tokens") or 0)
        return Response(
            id=reply.get("id"),
            model=str(reply.get("model") or self.provider_name),
            message=Message.assistant([TextPart(str(reply.get("text") or ""))]),
            finish_reason="stop",
            usage=Usage(
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                total_tokens=tokens_in + tokens_out,
            ),
        )

    def stream(self, request: Any) -> Any:
        """Providers answer whole; a stream is the whole answer as events."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """The provider belongs to its plugin, not to this engine: nothing to close."""


def make_lm(engine: ProviderEngine) -> Any:
    """A ``dspy.LM`` whose calls all go through ``engine`` (no cache, no retries)."""
    import dspy

    return dspy.LM(f"pipeline_ex/{engine.provider_name}", engine=engine, cache=False, num_retries=0)
