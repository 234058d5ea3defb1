"""The plugin's per-process state, kept in pytest's stash: the run's configuration, the worker side (everywhere
tests run) and, where results are gathered, the controller side."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from .controller import Controller
from .runconfig import RunConfig
from .worker import Worker


@dataclass
class State:
    run: RunConfig
    worker: Worker
    controller: Controller | None
    resumed: set


STATE = pytest.StashKey[State]()
