"""One sample's record: every key declared, typed and versioned (`schema`); docs/records.md describes each one.

The worker builds a record (`build`: a key this module does not declare is a clear error there), it travels to the
controller as plain JSON (pytest carries `report.user_properties` across processes), where the
`pytest_agentbench_record` hooks may add their own data under `plugins` and it is validated again (`check`) before
it is written; the JSONL holds one per line. Suites keep their own details under `extra`. Reading (`read_records`,
`load`) accepts this version and the previous one (`pytest-agentbench/record/v2`, upgraded: the top-level keys
hooks could add then move under `plugins`) and refuses an unknown key with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, with_config
from typing_extensions import TypedDict

from ..errors import AgentbenchError, HarnessError
from ..outcome import Status
from .storage import MARK, jsonl_rows

RECORD_SCHEMA = f"{MARK}/record/v3"  # v3: every key declared, unknown keys refused; hook additions under `plugins`
PREVIOUS_SCHEMA = f"{MARK}/record/v2"  # read and upgraded (upgrade)
READS = (RECORD_SCHEMA, PREVIOUS_SCHEMA)

_STRICT = ConfigDict(extra="forbid")


# -- the parts of a record (TypedDicts: a record keeps exactly the keys it was given, as before) ------------------
@with_config(_STRICT)
class Reply(TypedDict, total=False):
    """One model reply, as it came (re-grading replays them)."""

    text: str
    continues_prompt: bool


@with_config(_STRICT)
class TraceRef(TypedDict):
    """The agent's trace file (trace.py) and its sha256."""

    path: str
    sha256: str


@with_config(_STRICT)
class Limits(TypedDict, total=False):
    """agents.base.AgentLimits of an agent's run."""

    max_steps: int
    tool_timeout: float
    output_cap: int
    total_s: Optional[float]


@with_config(_STRICT)
class Seeds(TypedDict):
    """The seeds the sample's generators got (session.worker.seed_generators)."""

    python: int
    numpy: int
    torch: int


@with_config(_STRICT)
class Resources(TypedDict, total=False):
    """The memory of what runs the model, measured after the sample (Backend.resources)."""

    process: str  # which process ("in-process (gw0)", "llamacpp server")
    peak_rss_mb: Optional[float]
    cuda_peak_mb: Optional[float]
    cuda_used_mb: Optional[float]  # vLLM: the device memory in use
    alongside: list[str]  # other models the same process holds


@with_config(_STRICT)
class ServedBy(TypedDict, total=False):
    """The run's model server that answered (serving/)."""

    engine: str
    pid: Optional[int]
    base_url: str


@with_config(_STRICT)
class CacheCounts(TypedDict):
    """Replies of this sample served from the generation cache, and asked of the model."""

    hits: int
    misses: int


class Record(BaseModel):
    """One sample. Keys in docs/records.md; `extra` is the suite's, `plugins` the hooks'."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(RECORD_SCHEMA, alias="schema")
    # which sample
    model: str
    suite: str
    task: str
    sample: int = Field(ge=0)
    # what it ended as (outcome.Outcome)
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
    extra: dict[str, Any] = {}  # the suite's own details (each suite documents its keys)
    # how it was made: what decides its result (resume compares config_sha)
    params: dict[str, Any] = {}
    suite_settings: dict[str, Any] = {}
    config_sha: Optional[str] = None
    dataset_sha256: Optional[str] = None
    # for the report page: what the model was asked, what ran in the sandbox, what graded it (Suite.shown_tests)
    prompt: Optional[str] = None
    program: Optional[str] = None
    tests: Optional[str] = None
    replies: list[Reply] = []  # every model reply, as it came (re-grading)
    endpoints: list[str] = []  # the endpoints of a pool that answered this sample (backends/pool.py); else empty
    # what the worker adds (session/worker.py); those in OPTIONAL are absent where they do not apply
    agent_limits: Optional[Limits] = None  # an agent's limits (agent suites)
    trace: Optional[TraceRef] = None  # the trace file (suites that write traces)
    seeds: Optional[Seeds] = None
    quantization: Optional[str] = None  # the model's weights as run ("Q4_1", "float32", "8bit", ...)
    resources: Optional[Resources] = None  # None: nothing on this host runs the model
    ttft_s: Optional[list[float]] = None  # time to first token of each reply, where the backend streams
    memory_bound: Optional[str] = None  # what bounds the sandbox's memory: "cgroup" or "per-process"
    worker: Optional[str] = None  # the xdist worker ("gw0") or "main"
    served_by: Optional[ServedBy] = None
    cache: Optional[CacheCounts] = None  # with --agentbench-cache
    # what pytest_agentbench_record hooks add: {their key: anything JSON}
    plugins: dict[str, Any] = {}

    @classmethod
    def check(cls, data: dict) -> dict:
        """Validate a record dict; returns it as JSON-ready data (status as its value), without the keys that do
        not apply to it (OPTIONAL). Raises HarnessError with one line naming the first bad key."""
        try:
            found = cls.model_validate(data).model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            raise HarnessError(f"malformed record for {data.get('task')!r}: {_first_error(exc)}") from None
        for name in OPTIONAL:
            if not found[name]:
                del found[name]
        return found


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(map(str, err["loc"]))
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r} (declared keys: docs/records.md; a hook's own data goes under 'plugins')"
    return f"{where}: {err['msg']}"


#: keys a record holds only where they apply (absent rather than null or empty)
OPTIONAL = ("agent_limits", "trace", "resources", "ttft_s", "served_by", "cache", "plugins")
#: every top-level key of a record, as written
KEYS = frozenset(f.alias or name for name, f in Record.model_fields.items())


def build(**fields: Any) -> dict:
    """A new record (this version) from its keys, as the JSON it is written as; a key this module does not declare,
    or a value of the wrong type, is a HarnessError naming it."""
    return Record.check({"schema": RECORD_SCHEMA, **fields})


def infra_instead(record: dict, reason: str) -> dict:
    """An infra record in place of `record`, which failed validation: its identity kept as far as it is one."""
    sample, sha = record.get("sample"), record.get("config_sha")
    return build(
        model=str(record.get("model")),
        suite=str(record.get("suite")),
        task=str(record.get("task")),
        sample=sample if type(sample) is int and sample >= 0 else 0,
        config_sha=sha if isinstance(sha, str) else None,
        status=Status.INFRA.value,
        reason=reason,
    )


def move_to_plugins(record: dict) -> list[str]:
    """Move the top-level keys of `record` that a record does not declare under `record["plugins"]` (what a hook
    wrote where v2 let it); returns their names."""
    stray = sorted(k for k in record if k not in KEYS)
    if stray:
        plugins = record.setdefault("plugins", {})
        for name in stray:
            plugins[name] = record.pop(name)
    return stray


def upgrade(row: dict) -> dict:
    """A record of a version this tool reads, as this version's (still to be validated). v2 -> v3: the top-level
    keys v2 did not declare (a hook's additions) move under `plugins`."""
    schema = row.get("schema")
    if schema == RECORD_SCHEMA:
        return row
    if schema == PREVIOUS_SCHEMA:
        row = {**row, "schema": RECORD_SCHEMA}
        row.pop("backend_info", None)  # a worker-to-controller note, never meant to be written
        move_to_plugins(row)
        return row
    raise AgentbenchError(
        f"record schema {schema!r} is not one this version reads ({', '.join(READS)}): "
        "a newer pytest-agentbench wrote it, or it is not a record of this tool"
    )


def load(row: dict, where: str = "record") -> dict:
    """One record as read from a file: upgraded to this version and validated; a bad one is an AgentbenchError of one
    line starting with `where` (the file and line)."""
    try:
        return Record.check(upgrade(row))
    except (HarnessError, AgentbenchError) as exc:
        raise AgentbenchError(f"{where}: {str(exc).removeprefix('malformed record for ')}") from None


def read_records(path: Path | str) -> list[dict]:
    """The records of a JSONL file, each upgraded to this version and validated (`load`). As storage.read_records: a
    line cut short by a killed run is skipped, a missing file holds none; a record with an unknown key or a wrong
    type is an AgentbenchError naming the file and line."""
    records: list[dict] = []
    try:
        for n, row, _ in jsonl_rows(Path(path)):
            if row is not None and {"model", "suite", "task", "sample"} <= set(row):
                records.append(load(row, f"{path}:{n}"))
    except OSError:
        return []
    return records


def key(rec: dict) -> tuple[str, str, str, int]:
    return (rec["model"], rec["suite"], rec["task"], rec["sample"])


def resume_key(rec: dict) -> tuple:
    return (*key(rec), rec.get("config_sha"))
