"""Replies from a file, turn by turn: how a scenario author scripts an agent (models.yaml: `backend: scripted`,
`replies: FILE`), e.g. to try a reward hack against a scenario through the real pipeline.

The file (YAML or JSON) is a list of replies, the same for every task, or a mapping from a task id
(`fix_failing_test/default`), a scenario name (`fix_failing_test`) or `"*"` to such a list. A reply is the model's
whole text for one turn (`TOOL_CALL: {...}` or `FINAL: ...`); the item `"@gold"` stands for the task's reference
trajectory without its last reply, `"@final"` for its last reply (the gold FINAL). After the last reply the agent
answers `FINAL: (the script has no more replies)`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AgentbenchError
from ..models import ScriptedSpec
from .base import Backend, Completion, Request

END = "FINAL: (the script has no more replies)"


def load_script(path: Path) -> dict[str, list[str]]:
    """{key: replies} from a script file; a one-line AgentbenchError for anything else."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentbenchError(f"scripted replies {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AgentbenchError(
            f"scripted replies {path}: not valid YAML or JSON ({getattr(exc, 'problem', None) or exc})"
        ) from None
    script = {"*": doc} if isinstance(doc, list) else doc
    if not isinstance(script, dict) or not script:
        raise AgentbenchError(f"scripted replies {path}: expected a list of replies, or a mapping of task id to one")
    for key, replies in script.items():
        if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies) or not replies:
            raise AgentbenchError(f"scripted replies {path}: {key!r} must be a non-empty list of strings")
    return {str(k): v for k, v in script.items()}


class ScriptedBackend(Backend):
    spec_class = ScriptedSpec

    def __init__(self, spec):
        super().__init__(spec)
        if not spec.replies:
            raise AgentbenchError(f"model {spec.name!r}: backend scripted needs `replies: FILE` (a list of replies)")
        self.script = load_script(Path(spec.replies))

    @classmethod
    def preflight(cls, spec) -> None:
        if spec.replies:
            load_script(Path(spec.replies))

    def replies_for(self, request: Request) -> list[str]:
        task = request.sample.task_id
        replies = self.script.get(task) or self.script.get(task.split("/")[0]) or self.script.get("*")
        if replies is None:
            return [END]
        gold = (
            list(request.sample.reference or ())
            if isinstance(request.sample.reference, (list, tuple))
            else [request.sample.reference]
            if request.sample.reference
            else []
        )
        out: list[str] = []
        for reply in replies:
            if reply == "@gold":
                out.extend(gold[:-1])
            elif reply == "@final":
                out.extend(gold[-1:])
            else:
                out.append(reply)
        return out

    def generate(self, request: Request) -> Completion:
        replies = self.replies_for(request)
        turn = sum(m["role"] == "assistant" for m in request.messages)
        return Completion(text=replies[turn] if turn < len(replies) else END, finish_reason="scripted")

    def cache_identity(self):
        return None  # replies come from a file: nothing to cache
