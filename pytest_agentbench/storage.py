"""Files the tool writes: the per-sample JSONL, the report JSON, plots. Appends are flushed per sample; whole files
are replaced atomically; and a file this tool did not write is never overwritten or appended to.

Ownership is read from the file itself: records and reports carry a `schema` naming this tool, a PNG carries it
in its `Software` text chunk, an HTML page in a marker comment. An empty file holds nothing to lose.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .errors import AgentbenchError

RECORD_SCHEMA = "pytest-agentbench/record/v2"
REPORT_SCHEMA = "pytest-agentbench/report/v2"
MARK = "pytest-agentbench"
HTML_MARK = f"<!-- {MARK} report -->"
TABLE_MARK = f"<!-- {MARK} table -->"
TABLE_CSV_HEAD = "model,quantization,prompt_format,"


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                return raw.decode("utf-8", "replace")
            if f.tell() > 1 << 20:
                break
    return ""


def is_ours(path: Path, kind: str) -> bool:
    """True when `path` is empty or was written by this tool as a `kind` (records, report, trace, png, html)."""
    try:
        if path.stat().st_size == 0:
            return True
        if kind == "records":
            row = json.loads(_first_line(path))
            return isinstance(row, dict) and str(row.get("schema", "")).startswith(f"{MARK}/record/")
        if kind in ("report", "trace"):
            doc = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(doc, dict) and str(doc.get("schema", "")).startswith(f"{MARK}/{kind}/")
        if kind == "png":
            head = path.read_bytes()[:1 << 16]
            return head.startswith(b"\x89PNG") and MARK.encode() in head
        if kind == "html":
            return HTML_MARK.encode() in path.read_bytes()[:4096]
        if kind == "table-md":
            return _first_line(path).strip() == TABLE_MARK
        if kind == "table-csv":
            return _first_line(path).startswith(TABLE_CSV_HEAD)
        if kind == "otlp":  # OTLP JSON lines whose spans this tool made (its name is their scope and service)
            line = _first_line(path)
            doc = json.loads(line)
            return isinstance(doc, dict) and "resourceSpans" in doc and MARK in line
    except (OSError, ValueError):
        return False
    raise ValueError(f"unknown kind {kind!r}")


def claim(path: Path, kind: str, what: str) -> None:
    """Refuse, with one line, to write `what` to a path holding something this tool did not write."""
    if path.is_dir():
        raise AgentbenchError(f"{what} {path} is a directory")
    if path.exists() and not is_ours(path, kind):
        raise AgentbenchError(f"refusing to overwrite {path}: it is not a {kind} file written by pytest-agentbench "
                              f"(choose another path for the {what})")


class RecordLog:
    """Append-only JSONL, flushed per sample: a killed run keeps every sample it finished.

    Starts empty, or with `records` (a resumed run), written atomically before anything is appended."""

    def __init__(self, path: Path, records: Iterable[dict] = ()):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
        self._f = open(path, "a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_records(path: Path) -> list[dict]:
    """Records of a JSONL; a line cut short by a killed run is skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and {"model", "suite", "task", "sample"} <= set(rec):
            records.append(rec)
    return records


def write_json(path: Path, doc: dict) -> None:
    """Atomic write: a reader (or a crash) never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
