"""A task is pure data: what a suite loads, an item runs and a record names; `Params` are the generation and
execution settings a sample runs with. Nothing here knows suites, agents or pytest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    data: Mapping[str, Any] = field(default_factory=dict)
    reference: str | tuple[str, ...] | None = None  # what a perfect model replies (a tuple: turn by turn)
    reference_continues_prompt: bool = False  # True when `reference` is a continuation of `prompt` (human-eval style)
    markers: tuple[str, ...] = ()  # extra pytest markers (category, difficulty, ...)
    problem: str | None = None  # set when the dataset row is broken: the item errors with this line


@dataclass(frozen=True)
class Params:
    """Generation and execution settings of a run; part of a sample's identity (resume, provenance)."""

    temperature: float = 0.0
    max_new_tokens: int = 512
    seed: int = 1234
    task_timeout: float = 5.0

    def for_sample(self, sample: int) -> Params:
        from dataclasses import replace

        return replace(self, seed=self.seed + sample)
