"""Model prices and the cost of a span that did not report one.

A shipped table of list prices (USD per million tokens) is merged with the user's own
file (JSON or YAML, same shape), so private or fine-tuned models can be priced too.
Look-ups are memoised: ingest prices thousands of spans a second over a few models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float


class PriceTable:
    """Finds a model's price by exact name, then by the longest matching prefix."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = {k.lower(): v for k, v in prices.items()}
        self._by_length = sorted(self._prices, key=len, reverse=True)
        self.lookup = lru_cache(maxsize=4096)(self._lookup)

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The shipped table, with ``override``'s entries replacing or adding models."""
        text = resources.files("watchkeep.ingest").joinpath("prices.json").read_text("utf-8")
        prices = _parse(json.loads(text), "shipped price table")
        if override is not None:
            raw = yaml.safe_load(override.read_text("utf-8"))  # YAML is a superset of JSON
            prices.update(_parse(raw, str(override)))
        return cls(prices)

    def _lookup(self, model: str) -> Price | None:
        name = model.lower().rsplit("/", 1)[-1]
        exact = self._prices.get(name)
        if exact is not None:
            return exact
        for candidate in self._by_length:
            if name.startswith(candidate):
                return self._prices[candidate]
        return None

    def cost(self, model: str | None, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """The cost in USD, or None when the model or the token counts are unknown."""
        if model is None or (input_tokens is None and output_tokens is None):
            return None
        price = self.lookup(model)
        if price is None:
            return None
        return ((input_tokens or 0) * price.input + (output_tokens or 0) * price.output) / 1e6


def _parse(raw: object, source: str) -> dict[str, Price]:
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of model name to prices")
    out: dict[str, Price] = {}
    for name, entry in raw.items():
        if str(name).startswith("_"):
            continue
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise ValueError(f"{source}: {name!r} needs 'input' and 'output' (USD per 1M tokens)")
        out[str(name)] = Price(float(entry["input"]), float(entry["output"]))
    return out
