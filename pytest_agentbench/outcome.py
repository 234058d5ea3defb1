"""What one sample ended as. The taxonomy is closed so reports from any suite add up."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .trace import Trace


class Status(str, enum.Enum):
    PASSED = "passed"  # the tests passed
    FAILED = "failed"  # a test assertion failed
    ERROR = "error"  # the candidate code raised (or did not compile)
    TIMEOUT = "timeout"  # the candidate code ran past its limit
    UNPARSABLE = "unparsable"  # no code (or no valid tool call) in the model's reply
    INFRA = "infra"  # the harness failed: counted apart, never the model's fault


@dataclass
class Outcome:
    status: Status
    reason: str = ""
    completion: str = ""  # the model's raw reply (last one for multi-turn agents)
    program: str | None = None  # what ran in the sandbox
    stdout: str = ""
    stderr: str = ""
    model_s: float = 0.0
    sandbox_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    trace: Any = field(default=None, repr=False)  # the agent's trace.Trace (written to a file by some suites)

    @classmethod
    def from_trace(
        cls,
        trace: Trace,
        status: Status,
        reason: str = "",
        *,
        completion: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Outcome:
        """The grade of an agent's run: the one place the trace's totals become the outcome's (model time, tool time
        in the sandbox, tokens). `completion` defaults to the model's last reply; `extra` is kept as the same dict
        (a grader may go on filling it); a grader adds the time its own sandbox runs took to `sandbox_s`."""
        return cls(
            status,
            reason=reason,
            completion=trace.details.get("last_reply", "") if completion is None else completion,
            model_s=trace.latency_s["model"],
            sandbox_s=trace.latency_s["tools"],
            prompt_tokens=trace.tokens["prompt"],
            completion_tokens=trace.tokens["completion"],
            extra={} if extra is None else extra,
            trace=trace,
        )

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def check(self) -> None:
        """Turn the outcome into the test's verdict with a one-line reason (no traceback); the reason comes from
        model-written code, so its control characters are shown escaped (sanitize.py)."""
        if not self.passed:
            import pytest

            from .sanitize import for_terminal

            pytest.fail(for_terminal(f"{self.status.value}: {self.reason}".rstrip(": ")), pytrace=False)

    def to_record(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trace"}
        data["extra"] = dict(data["extra"])
        data["status"] = self.status.value
        return data
