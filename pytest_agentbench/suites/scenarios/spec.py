"""The scenario file, `scenario.yaml`, validated (pydantic, unknown keys refused): prompt, variants, checks,
forbidden actions, the gold trajectory `--model reference` replays, and what the hidden tests may import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import Field, ValidationError

from .checks import AnyCheck, Spec


class GoldStep(Spec):
    tool: str
    args: dict[str, Any] = {}
    thought: str = ""


class Gold(Spec):
    steps: list[GoldStep] = []
    final: str


class Variant(Spec):
    workspace: Optional[str] = None  # an overlay folder (relative to the scenario) copied over workspace/
    prompt: Optional[str] = None  # replaces the scenario's prompt
    prompt_append: str = ""
    gold: Optional[Gold] = None  # the variant's own gold trajectory (else the scenario's)


class Forbidden(Spec):
    """Safety rules, judged on what the agent's processes did (the sandbox's audit of every command: programs
    executed, files opened, paths created, renamed, removed) and on what its tools read, showed and wrote, at any
    moment of the run; `write_outside` and the end of `delete` on the workspace the agent left."""

    install: bool = True  # installing packages, by command or by its effect
    commands: list[str] = []  # regexes over each program run (its argv joined with spaces), however
    #                                          it was started, and over "<interpreter> <file>" for each workspace
    #                                          file a shell, Python, ... read as code (or was fed on its stdin)
    read: list[str] = []  # globs: files that must never be opened for reading, nor shown
    execute: list[str] = []  # globs: files whose code must never run: executed, read by anything but a
    #                                          plain reader (cat, grep, ...), fed to a program on its stdin, through a
    #                                          pipe or in its arguments, or copied and run
    write: list[str] = []  # globs: paths that must never be written, created, renamed, removed or
    #                                          re-permissioned, even if restored afterwards (folders count)
    write_outside: Optional[list[str]] = None  # globs of the only paths that may differ at the end (folders count)
    delete: list[str] = []  # globs of paths that must never be deleted (or moved away)
    leak: list[str] = []  # strings that must not leave their file (answer, commands, other files),
    #                                          in plain text or in a common encoding (base64, hex, reversed, ...)


class ScenarioSpec(Spec):
    description: str
    category: Union[str, list[str]]
    prompt: str
    variants: dict[str, Variant] = {"default": Variant()}
    gold: Optional[Gold] = None
    checks: list[AnyCheck] = Field(min_length=1)
    forbidden: Forbidden = Forbidden()
    forbidden_example: list[GoldStep] = []  # a step that breaks this scenario's rules (the tests use it)
    max_steps: Optional[int] = None
    #: workspace packages (top-level modules) the hidden tests may import; default: those the starting workspace
    #: holds. Anything else a hidden test imports comes from the grader's own environment, never the workspace.
    packages: Optional[list[str]] = None

    @property
    def categories(self) -> tuple[str, ...]:
        return (self.category,) if isinstance(self.category, str) else tuple(self.category)


def reply_for(step: GoldStep) -> str:
    thought = f"THOUGHT: {step.thought}\n" if step.thought else ""
    return thought + "TOOL_CALL: " + json.dumps({"tool": step.tool, "args": step.args})


def gold_replies(gold: Gold) -> tuple[str, ...]:
    """The gold trajectory as the replies `--model reference` gives, turn by turn."""
    return tuple(reply_for(s) for s in gold.steps) + (f"FINAL: {gold.final}",)


def load_spec(folder: Path) -> ScenarioSpec:
    import yaml

    path = folder / "scenario.yaml"
    try:
        return ScenarioSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p.endswith("Check")))
        raise ValueError(f"{path}: {where}: {err['msg']}") from exc
