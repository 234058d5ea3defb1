"""Write the JSON Schemas of the files the tool writes, from their pydantic models: docs/trace.schema.json (an agent's
trace, trace.Trace) and docs/record.schema.json (one line of the per-sample JSONL, results.records.Record). Tests
fail when either is stale: run `python scripts/write_schemas.py` after changing a model."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_agentbench.results.records import Record  # noqa: E402
from pytest_agentbench.trace import Trace  # noqa: E402

SCHEMAS = {"trace.schema.json": Trace, "record.schema.json": Record}

if __name__ == "__main__":
    for name, model in SCHEMAS.items():
        path = ROOT / "docs" / name
        path.write_text(json.dumps(model.model_json_schema(by_alias=True), indent=2) + "\n", encoding="utf-8")
        print(path)
