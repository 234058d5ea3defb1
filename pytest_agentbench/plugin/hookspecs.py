"""Hooks users implement in a conftest.py to customize pytest-agentbench without forking it."""

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_agentbench_make_backend(spec):
    """Return a Backend for `spec` (a models.ModelSpec), or None to let the built-in backends try."""


@hookspec
def pytest_agentbench_record(record, config):
    """Called on the controller for each finished sample before it is written. Add your own data under
    `record["plugins"]` (a dict, JSON values; e.g. `record["plugins"]["team"] = "blue"`); the record's other keys are
    declared (results/records.py, docs/records.md) and may be changed but not added to: a new top-level key is
    moved under `plugins`, with a warning."""


@hookspec
def pytest_agentbench_report(report, config):
    """Called once with the report dict before it is written; may add or change keys."""
