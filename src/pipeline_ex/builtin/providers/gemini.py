"""``gemini`` in live mode: the official ``google-genai`` SDK, ``models.generate_content``.

pipeline_ex's gemini steps carry ``model`` and a ``token_budget`` (``max_output_tokens``,
``temperature``, ``top_p``, ``top_k``); other keys they may carry (``functions``,
``output_format``, ...) are tolerated and reported back in ``ignored_options``.

The SDK is imported on first use, not at construction, so mock-mode start-up never pays
for it.  Only the Gemini Developer API (API key) is used: ``vertexai=False`` is explicit so
a stray ``GOOGLE_GENAI_USE_VERTEXAI`` in the environment cannot switch backends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from pipeline_ex.builtin.providers.live import LiveProvider, short
from pipeline_ex.builtin.providers.pricing import gemini_cost
from pipeline_ex.errors import ProviderConfigurationError, ProviderError

#: Checked in this order; the project documents GEMINI_API_KEY, the SDK's own docs
#: GOOGLE_API_KEY, and users have either.
API_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV = "GEMINI_BASE_URL"

#: gemini-2.5-flash, pipeline_ex's usual choice, is retired on 2026-12-01; its GA successor
#: in the Flash line is the default so a workflow without ``model`` keeps working.
DEFAULT_MODEL = "gemini-3.5-flash"

TOKEN_BUDGET_KEYS = ("max_output_tokens", "temperature", "top_p", "top_k")
USED_OPTIONS = frozenset(
    {"model", "token_budget", "system_prompt", "system_instruction", "step_name"}
)

#: Finish reasons that are a normal end of generation; any other with no text is a block.
_NORMAL_FINISH = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})


class GeminiProvider(LiveProvider):
    """The ``gemini`` provider of live mode; one SDK client shared by all threads."""

    name = "gemini"
    base_url_env = BASE_URL_ENV
    default_url = "https://generativelanguage.googleapis.com"

    def _make_client(self) -> Any:
        api_key = next(
            (os.environ[n].strip() for n in API_KEY_ENVS if os.environ.get(n, "").strip()), ""
        )
        if not api_key:
            raise ProviderConfigurationError(
                f"live mode needs {API_KEY_ENVS[0]} (or {API_KEY_ENVS[1]}) for the 'gemini' "
                "provider; set it, or run in mock mode (--mode mock)"
            )
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise ProviderConfigurationError(
                "the 'gemini' provider needs the google-genai SDK: "
                f"pip install 'pipeline-ex[providers]' ({exc})"
            ) from exc
        retry = (
            types.HttpRetryOptions(attempts=self.max_retries + 1)
            if self.max_retries > 0
            else None  # no retry options means a single attempt in google-genai
        )
        http_options = types.HttpOptions(
            base_url=self.base_url,
            timeout=max(1, round(self.timeout * 1000)),  # milliseconds
            retry_options=retry,
        )
        return genai.Client(vertexai=False, api_key=api_key, http_options=http_options)

    # -- the provider contract ----------------------------------------------------------
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        client = self._get_client()
        model = str(options.get("model") or DEFAULT_MODEL).strip()
        config = self._config(options)
        started = time.perf_counter()
        try:
            response = client.models.generate_content(model=model, contents=prompt, config=config)
        except Exception as exc:
            raise self._translate(exc, model) from exc
        return self._read_reply(response, model, options, time.perf_counter() - started)

    def _config(self, options: Mapping[str, Any]) -> Any:
        from google.genai import types

        budget = options.get("token_budget") or {}
        if not isinstance(budget, Mapping):
            raise ProviderError(
                "token_budget must be a mapping of "
                f"{', '.join(TOKEN_BUDGET_KEYS)}; got {type(budget).__name__}",
                code="provider_bad_option",
            )
        settings = {k: budget[k] for k in TOKEN_BUDGET_KEYS if budget.get(k) is not None}
        system = options.get("system_instruction") or options.get("system_prompt")
        if system:
            settings["system_instruction"] = str(system)
        if not settings:
            return None
        try:
            return types.GenerateContentConfig(**settings)
        except ValueError as exc:  # pydantic's ValidationError names the bad field
            raise ProviderError(
                f"invalid gemini token_budget: {short(str(exc))}", code="provider_bad_option"
            ) from None

    def _response(
        self, response: Any, model: str, options: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        candidates = response.candidates or []
        finish = _enum_name(candidates[0].finish_reason) if candidates else None
        text = response.text
        if text is None and finish == "MAX_TOKENS":
            raise ProviderError(
                f"Gemini ({model}) used all its output tokens before writing an answer "
                "(thinking counts against max_output_tokens); raise "
                "token_budget.max_output_tokens",
                code="provider_truncated",
            )
        if text is None and (not candidates or (finish or "STOP") not in _NORMAL_FINISH):
            feedback = response.prompt_feedback
            blocked = _enum_name(feedback.block_reason) if feedback is not None else None
            reason = blocked or finish or "no candidates returned"
            raise ProviderError(
                f"Gemini ({model}) returned no text: the response was blocked ({reason})",
                code="provider_blocked",
            )
        usage = response.usage_metadata
        prompt_tokens = int(getattr(usage, "prompt_token_count", None) or 0)
        answer_tokens = int(getattr(usage, "candidates_token_count", None) or 0)
        thinking_tokens = int(getattr(usage, "thoughts_token_count", None) or 0)
        served_model = str(response.model_version or model)
        cost = gemini_cost(model, prompt_tokens, answer_tokens + thinking_tokens)
        if cost is None and served_model != model:
            cost = gemini_cost(served_model, prompt_tokens, answer_tokens + thinking_tokens)
        return {
            "text": text or "",
            "success": True,
            "cost": round(cost or 0.0, 8),
            "priced": cost is not None,
            "provider": self.name,
            "model": served_model,
            "usage": {
                "input_tokens": prompt_tokens,
                "output_tokens": answer_tokens + thinking_tokens,
                "thinking_tokens": thinking_tokens,
                "total_tokens": int(getattr(usage, "total_token_count", None) or 0),
            },
            "finish_reason": finish,
            "id": response.response_id,
            "duration_ms": round(seconds * 1000, 1),
            "ignored_options": sorted(set(options) - USED_OPTIONS),
        }

    # -- errors -------------------------------------------------------------------------
    def _translate(self, exc: Exception, model: str) -> ProviderError:
        """An SDK or transport exception -> a ProviderError that says what happened."""
        from google.genai import errors

        where = f"Gemini API ({model})"
        timeouts, transport = _httpx_errors()
        if isinstance(exc, timeouts):
            attempts = self.max_retries + 1
            tries = f" on each of {attempts} attempts" if attempts > 1 else ""
            return ProviderError(
                f"{where} request timed out after {self.timeout:g}s{tries}; raise the "
                "live_providers 'timeout' setting for long generations",
                code="provider_timeout",
            )
        if isinstance(exc, transport):
            return ProviderError(
                f"cannot reach the Gemini API at {self._shown_url()}: {exc}",
                code="provider_unreachable",
            )
        if isinstance(exc, errors.APIError):
            status = int(exc.code or 0)
            state = f", {exc.status}" if exc.status else ""
            detail = short(exc.message or str(exc))
            if status == 429:
                wait = _retry_after(exc)
                hint = f"; the server asked to retry after {wait}" if wait else ""
                return ProviderError(
                    f"{where} rate limit hit (HTTP 429{state}): {detail}{hint}",
                    code="provider_rate_limited",
                )
            if status in (401, 403) or _reason(exc) == "API_KEY_INVALID":
                return ProviderError(
                    f"{where} authentication failed (HTTP {status}{state}): {detail}; "
                    f"check {API_KEY_ENVS[0]}",
                    code="provider_auth_failed",
                )
            return ProviderError(
                f"{where} returned an error (HTTP {status}{state}): {detail}",
                code="provider_api_error",
            )
        if isinstance(exc, ValueError | TypeError):
            return ProviderError(f"{where} refused the request: {exc}", code="provider_api_error")
        return ProviderError(
            f"{where} call failed: {type(exc).__name__}: {exc}", code="provider_api_error"
        )


def _httpx_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout classes, transport classes) of whichever httpx flavour google-genai uses.

    google-genai does not wrap transport failures; it lets httpx's (or its fork httpx2's)
    exceptions through, and picks the flavour at run time.
    """
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


def _error_details(exc: Any) -> list[Mapping[str, Any]]:
    body = exc.details if isinstance(exc.details, Mapping) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, Mapping) else None
    return [d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else []


def _reason(exc: Any) -> str | None:
    for detail in _error_details(exc):
        if detail.get("reason"):
            return str(detail["reason"])
    return None


def _retry_after(exc: Any) -> str | None:
    """The wait the server asked for: the Retry-After header, else google.rpc.RetryInfo."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        value = headers.get("retry-after")
        if value:
            try:
                return f"{float(value):g}s"
            except ValueError:
                return str(value)
    for detail in _error_details(exc):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo") and detail.get(
            "retryDelay"
        ):
            return str(detail["retryDelay"])
    return None


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))
