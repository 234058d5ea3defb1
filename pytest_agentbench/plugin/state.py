"""The plugin's per-process state, kept in pytest's stash: the run's configuration, the worker side (everywhere
tests run) and, where results are gathered, the controller side."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..session.config import RunConfig
from ..session.controller import Controller
from ..session.worker import Worker


@dataclass
class State:
    run: RunConfig
    worker: Worker
    controller: Controller | None
    resumed: dict  # (model, suite, task, sample) -> the finished record an earlier run left
    refusal: str | None = None  # why the run must not start, found while collecting (plugin._refuse says it)


STATE = pytest.StashKey[State]()
