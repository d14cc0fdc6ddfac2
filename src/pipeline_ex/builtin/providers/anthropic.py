"""``claude`` in live mode: the official ``anthropic`` SDK, Messages API.

pipeline_ex drove Claude Code, so its ``claude_options`` are Claude Code's (``max_turns``,
``allowed_tools``, ``cwd``, ...).  A workflow written for it must still run here, so every
option this provider cannot honour over the Messages API is tolerated and reported back
in ``ignored_options`` instead of being rejected.

The SDK is imported on first use, not at construction: the plugin is built on every
Runtime start, mock mode included, and ``import anthropic`` costs about a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from pipeline_ex.builtin.providers.live import LiveProvider, short
from pipeline_ex.builtin.providers.pricing import claude_cost
from pipeline_ex.errors import ProviderConfigurationError, ProviderError

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"

#: The floating aliases pipeline_ex workflows use (Claude Code's ``--model``), resolved the
#: way Claude Code resolves them first-party as of November 2026.  Pinned here rather than
#: sent as-is because the Messages API accepts only real model ids.
MODEL_ALIASES: Mapping[str, str] = {
    "haiku": "claude-haiku-5-5",
    "sonnet": "claude-sonnet-5-5",
    "opus": "claude-opus-5-5",
    "fable": "claude-fable-5-1",
}
DEFAULT_MODEL = "claude-sonnet-5-5"
#: The Messages API requires ``max_tokens``; pipeline_ex steps rarely set it.  Claude 5
#: models think by default and thinking counts against this limit, so it is generous:
#: only the tokens actually generated are billed.
DEFAULT_MAX_TOKENS = 16384

#: Options this provider acts on; anything else is listed in ``ignored_options``.
#: ``temperature``/``top_p``/``top_k`` are deliberately absent: Claude 5 models answer a
#: non-default sampling parameter with HTTP 400 and the SDK no longer has the arguments,
#: so forwarding them would turn a harmless pipeline_ex option into a failed step.
USED_OPTIONS = frozenset(
    {"model", "max_tokens", "system_prompt", "append_system_prompt", "stop_sequences", "step_name"}
)


def resolve_model(model: Any) -> str:
    """A pipeline_ex ``model`` value (alias or id) -> the id sent to the API."""
    if model is None or model == "":
        return DEFAULT_MODEL
    name = str(model).strip()
    return MODEL_ALIASES.get(name.lower(), name)


class AnthropicProvider(LiveProvider):
    """The ``claude`` provider of live mode; one SDK client shared by all threads."""

    name = "claude"
    base_url_env = BASE_URL_ENV
    default_url = "https://api.anthropic.com"

    def _make_client(self) -> Any:
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise ProviderConfigurationError(
                f"live mode needs {API_KEY_ENV} for the 'claude' provider; set it, or run "
                "in mock mode (--mode mock)"
            )
        try:
            import anthropic
        except ImportError as exc:
            raise ProviderConfigurationError(
                "the 'claude' provider needs the anthropic SDK: "
                f"pip install 'pipeline-ex[providers]' ({exc})"
            ) from exc
        # api_key is passed explicitly so the SDK never falls back to profile files or
        # workload-identity credentials the user did not ask for.
        return anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    # -- the provider contract ----------------------------------------------------------
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        client = self._get_client()
        model = resolve_model(options.get("model"))
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": _max_tokens(options.get("max_tokens")),
            "messages": [{"role": "user", "content": prompt}],
        }
        system = _system_prompt(options)
        if system:
            request["system"] = system
        stops = options.get("stop_sequences")
        if stops:
            request["stop_sequences"] = [stops] if isinstance(stops, str) else list(map(str, stops))
        started = time.perf_counter()
        try:
            message = client.messages.create(**request)
        except Exception as exc:
            raise self._translate(exc, model) from exc
        return self._read_reply(message, model, options, time.perf_counter() - started)

    def _response(
        self, message: Any, model: str, options: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        text = "".join(
            block.text for block in message.content if getattr(block, "type", None) == "text"
        )
        if not text and message.stop_reason == "refusal":
            raise ProviderError(
                f"Claude ({model}) declined to answer (stop_reason 'refusal')",
                code="provider_refusal",
            )
        if not text and message.stop_reason == "max_tokens":
            raise ProviderError(
                f"Claude ({model}) used all {message.usage.output_tokens} output tokens "
                "before writing an answer (thinking counts against max_tokens); raise "
                "claude_options.max_tokens",
                code="provider_truncated",
            )
        usage = message.usage
        input_tokens = int(usage.input_tokens or 0)
        output_tokens = int(usage.output_tokens or 0)
        cache_write = int(getattr(usage, "cache_creation_input_tokens", None) or 0)
        cache_read = int(getattr(usage, "cache_read_input_tokens", None) or 0)
        served_model = str(message.model or model)
        cost = claude_cost(served_model, input_tokens, output_tokens, cache_write, cache_read)
        if cost is None and served_model != model:
            cost = claude_cost(model, input_tokens, output_tokens, cache_write, cache_read)
        return {
            "text": text,
            "success": True,
            "cost": round(cost or 0.0, 8),
            "priced": cost is not None,
            "provider": self.name,
            "model": served_model,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
            },
            "stop_reason": message.stop_reason,
            "id": message.id,
            "duration_ms": round(seconds * 1000, 1),
            "ignored_options": sorted(set(options) - USED_OPTIONS),
        }

    # -- errors -------------------------------------------------------------------------
    def _translate(self, exc: Exception, model: str) -> ProviderError:
        """An SDK exception -> a ProviderError whose message says what happened."""
        try:
            import anthropic
        except ImportError:  # pragma: no cover - the call above needed it
            return ProviderError(f"Claude call failed: {type(exc).__name__}: {exc}")
        where = f"Anthropic API ({model})"
        if isinstance(exc, anthropic.APITimeoutError):
            attempts = self.max_retries + 1
            tries = f" on each of {attempts} attempts" if attempts > 1 else ""
            return ProviderError(
                f"{where} request timed out after {self.timeout:g}s{tries}; raise the "
                "live_providers 'timeout' setting for long generations",
                code="provider_timeout",
            )
        if isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {cause}" if cause else ""
            return ProviderError(
                f"cannot reach the Anthropic API at {self._shown_url()}{detail}",
                code="provider_unreachable",
            )
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            detail = exc.api_message or short(exc.message)
            if isinstance(exc, anthropic.RateLimitError) or status == 429:
                wait = _retry_after(exc.response.headers)
                hint = f"; the server asked to retry after {wait}" if wait else ""
                return ProviderError(
                    f"{where} rate limit hit (HTTP 429): {detail}{hint}",
                    code="provider_rate_limited",
                )
            if status in (401, 403):
                what = "authentication failed" if status == 401 else "permission denied"
                return ProviderError(
                    f"{where} {what} (HTTP {status}): {detail}; check {API_KEY_ENV}",
                    code="provider_auth_failed",
                )
            kind = f", {exc.type}" if exc.type else ""
            return ProviderError(
                f"{where} returned an error (HTTP {status}{kind}): {detail}",
                code="provider_api_error",
            )
        if isinstance(exc, anthropic.AnthropicError | ValueError | TypeError):
            # The SDK validates locally too (e.g. "streaming is required" for huge
            # max_tokens); those are the user's options, not a crash.
            return ProviderError(f"{where} refused the request: {exc}", code="provider_api_error")
        return ProviderError(
            f"{where} call failed: {type(exc).__name__}: {exc}", code="provider_api_error"
        )


def _max_tokens(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_MAX_TOKENS
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise ProviderError(
            f"claude_options.max_tokens must be a positive integer, got {value!r}",
            code="provider_bad_option",
        )
    return number


def _system_prompt(options: Mapping[str, Any]) -> str:
    parts = [options.get("system_prompt"), options.get("append_system_prompt")]
    return "\n\n".join(str(p) for p in parts if p)


def _retry_after(headers: Any) -> str | None:
    """The server's wait hint as it should be shown: ``7s``, ``1.5s`` or an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return f"{float(milliseconds) / 1000:g}s"
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return f"{float(value):g}s"
    except ValueError:
        return str(value)
