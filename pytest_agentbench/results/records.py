"""One sample's record: typed and versioned (`schema`), validated where records are gathered.

Records travel from xdist workers as plain dicts (pytest carries `report.user_properties` across processes) and
are validated into `Record` on the controller before they are written; the JSONL holds one per line. Suites keep
their own details under `extra`; hooks (`pytest_agentbench_record`) may add top-level keys.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import HarnessError
from ..outcome import Status
from .storage import RECORD_SCHEMA


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(RECORD_SCHEMA, alias="schema")
    model: str
    suite: str
    task: str
    sample: int = Field(ge=0)
    status: Status
    reason: str = ""
    completion: str = ""
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    started_at: Optional[float] = None  # wall-clock Unix time the sample started (absent in older records)
    model_s: float = 0.0
    sandbox_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    params: dict[str, Any] = {}
    suite_settings: dict[str, Any] = {}
    config_sha: Optional[str] = None
    dataset_sha256: Optional[str] = None
    extra: dict[str, Any] = {}
    # for the report page: what the model was asked, what ran in the sandbox, what graded it (Suite.shown_tests)
    prompt: Optional[str] = None
    program: Optional[str] = None
    tests: Optional[str] = None
    replies: list[dict[str, Any]] = []  # every model reply, as it came: {"text", "continues_prompt"} (re-grading)
    endpoints: list[str] = []  # the endpoints of a pool that answered this sample (backends/pool.py); else empty

    @classmethod
    def check(cls, data: dict) -> dict:
        """Validate a record dict; returns it as JSON-ready data (status as its value)."""
        try:
            return cls.model_validate(data).model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise HarnessError(
                f"malformed record for {data.get('task')!r}: {'.'.join(map(str, err['loc']))}: {err['msg']}"
            ) from None


def key(rec: dict) -> tuple[str, str, str, int]:
    return (rec["model"], rec["suite"], rec["task"], rec["sample"])


def resume_key(rec: dict) -> tuple:
    return (*key(rec), rec.get("config_sha"))
