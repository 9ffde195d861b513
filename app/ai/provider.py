"""Model providers behind one interface; `local` is deterministic (same input, same output and token counts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class ModelProvider(Protocol):
    name: str

    async def complete(self, *, system: str, prompt: str, max_tokens: int) -> Completion: ...


def count_tokens(text: str) -> int:
    """A stable approximation (one token per word-ish chunk of four characters)."""
    return sum(max(1, -(-len(word) // 4)) for word in text.split())


class LocalProvider:
    """No network, no model: answers from a digest of its input, so tests can assert on exact values."""

    name = "local"

    async def complete(self, *, system: str, prompt: str, max_tokens: int) -> Completion:
        digest = hashlib.sha256(f"{system}\n{prompt}".encode()).hexdigest()[:12]
        text = f"[local:{digest}] {prompt.strip()}\n--- context ---\n{system}"
        words = text.split()
        completion_tokens = count_tokens(text)
        while completion_tokens > max_tokens and words:
            words = words[: max(0, len(words) - max(1, len(words) // 4))]
            text = " ".join(words)
            completion_tokens = count_tokens(text)
        return Completion(
            text=text,
            prompt_tokens=count_tokens(system) + count_tokens(prompt),
            completion_tokens=completion_tokens,
        )


PROVIDERS: dict[str, type[LocalProvider]] = {"local": LocalProvider}


def get_provider(name: str) -> ModelProvider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ValueError(f"unknown AI provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
