"""What the live providers share: one SDK client per provider, made on first use.

The client is created lazily (so mock mode never imports an SDK), once, under a lock (so
threads of a parallel step share it), and its creation is what ``preflight`` checks: a
missing key or SDK fails the run before its first step.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from pipeline_ex.errors import ProviderError
from pipeline_ex.registries.providers import FALLBACK_PRIORITY


class LiveProvider:
    """Base of ``AnthropicProvider`` and ``GeminiProvider``; subclasses make the client."""

    name = ""
    #: Built-in providers are fallbacks: ``select`` prefers any plugin provider of the
    #: default priority over them (see ``pipeline_ex.registries.providers``).
    priority = FALLBACK_PRIORITY
    #: Environment variable that overrides the API's base URL (tests point it at 127.0.0.1).
    base_url_env = ""
    #: The public API, shown in error messages when no base URL is set.
    default_url = ""

    def __init__(
        self, base_url: str | None = None, timeout: float = 600.0, max_retries: int = 2
    ) -> None:
        self._base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str | None:
        """Constructor argument first, then the environment variable (read when used)."""
        return self._base_url or os.environ.get(self.base_url_env) or None

    def preflight(self) -> None:
        """Fail the run before its first step when no call could succeed."""
        self._get_client()

    def _get_client(self) -> Any:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        """Check the key, import the SDK, build its client (raise ProviderConfigurationError)."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _shown_url(self) -> str:
        return self.base_url or self.default_url

    def _response(
        self, reply: Any, model: str, options: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        """The pipeline_ex reply mapping built from the SDK's response object."""
        raise NotImplementedError

    def _read_reply(
        self, reply: Any, model: str, options: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        """``_response``, with a reply of an unexpected shape (a proxy's HTML page, a JSON
        body of another API) reported as a provider error rather than a crash."""
        try:
            return self._response(reply, model, options, seconds)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(
                f"{self.name} ({model}) sent a reply that could not be read "
                f"({type(exc).__name__}: {short(str(exc), 120)}); is {self._shown_url()} "
                "the real API?",
                code="provider_bad_response",
            ) from exc


def short(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters, for error messages quoting an API."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
