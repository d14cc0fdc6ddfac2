"""Per-model list prices, so a live step's ``cost`` is a number a user can budget with.

The APIs report token usage, never money; pipeline_ex's AIProvider contract wants ``cost``
in USD, so it is estimated here from usage and the vendors' published standard (paid tier,
synchronous, no batch discount) prices in USD per million tokens, as of ``PRICES_AS_OF``.
A model that is not in the table costs ``0.0`` and the provider says so (``priced: False``)
rather than guessing: a wrong price is worse than a visibly missing one.

Two billing rules are modelled because they change the bill by several times:

* long prompts: some models bill the whole request at a higher rate once the prompt
  exceeds a threshold (Gemini Pro above 200k tokens, Claude Haiku 5.5 above 100k);
* Claude prompt caching: cache writes cost 1.25x and cache reads 0.1x the input price.

Gemini's ``promptTokenCount`` includes cached tokens and they are charged at the full input
price here, so with context caching the estimate errs high.  Thinking tokens are billed as
output by both vendors and are counted as output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PRICES_AS_OF = "2026-11"

#: Anthropic's multipliers on the input price for prompt caching (5-minute writes, reads).
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1

_MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``long_*`` apply when the prompt exceeds ``long_threshold``."""

    input: float
    output: float
    long_threshold: int | None = None
    long_input: float | None = None
    long_output: float | None = None

    def rates(self, prompt_tokens: int) -> tuple[float, float]:
        if self.long_threshold is not None and prompt_tokens > self.long_threshold:
            return (
                self.long_input if self.long_input is not None else self.input,
                self.long_output if self.long_output is not None else self.output,
            )
        return self.input, self.output


CLAUDE_PRICES: Mapping[str, Price] = {
    "claude-fable-5-1": Price(10.0, 50.0),
    "claude-opus-5-5": Price(4.0, 20.0),
    "claude-opus-5": Price(5.0, 25.0),
    "claude-sonnet-5-5": Price(2.0, 10.0),
    "claude-sonnet-5": Price(2.0, 10.0),
    "claude-haiku-5-5": Price(
        0.10, 0.50, long_threshold=100_000, long_input=0.50, long_output=2.50
    ),
    "claude-opus-4-7": Price(5.0, 25.0),
    "claude-opus-4-6": Price(5.0, 25.0),
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-sonnet-4-6": Price(3.0, 15.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4": Price(3.0, 15.0),
}

GEMINI_PRICES: Mapping[str, Price] = {
    "gemini-3.5-flash": Price(1.50, 9.00),
    "gemini-3.1-pro-preview": Price(
        2.00, 12.00, long_threshold=200_000, long_input=4.00, long_output=18.00
    ),
    "gemini-3.1-flash-lite": Price(0.25, 1.50),
    "gemini-3.1-flash-lite-preview": Price(0.25, 1.50),
    "gemini-3-flash-preview": Price(0.50, 3.00),
    "gemini-3-pro-preview": Price(
        2.00, 12.00, long_threshold=200_000, long_input=4.00, long_output=18.00
    ),
    "gemini-2.5-pro": Price(
        1.25, 10.00, long_threshold=200_000, long_input=2.50, long_output=15.00
    ),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}

# Pre-4.6 Claude ids carry a snapshot date (claude-haiku-4-5-20251001); the price is the
# family's, so the date is dropped before the lookup.
_SNAPSHOT_SUFFIX = re.compile(r"-\d{8}$")


def claude_price(model: str) -> Price | None:
    return CLAUDE_PRICES.get(_SNAPSHOT_SUFFIX.sub("", model))


def gemini_price(model: str) -> Price | None:
    return GEMINI_PRICES.get(model.removeprefix("models/"))


def claude_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float | None:
    """USD for one Messages API call, or ``None`` when the model has no known price."""
    price = claude_price(model)
    if price is None:
        return None
    prompt_tokens = input_tokens + cache_write_tokens + cache_read_tokens
    input_rate, output_rate = price.rates(prompt_tokens)
    billed_input = (
        input_tokens
        + cache_write_tokens * CACHE_WRITE_FACTOR
        + cache_read_tokens * CACHE_READ_FACTOR
    )
    return (billed_input * input_rate + output_tokens * output_rate) / _MILLION


def gemini_cost(model: str, prompt_tokens: int, output_tokens: int) -> float | None:
    """USD for one generateContent call, or ``None`` when the model has no known price."""
    price = gemini_price(model)
    if price is None:
        return None
    input_rate, output_rate = price.rates(prompt_tokens)
    return (prompt_tokens * input_rate + output_tokens * output_rate) / _MILLION
