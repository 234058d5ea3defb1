"""Files the tool writes: the per-sample JSONL, the report JSON, plots. Appends are flushed per sample (a failed append
leaves no half line); whole files are replaced atomically; a file this tool did not write is never overwritten or
appended to; and a new run first moves the previous run's report and records aside (`archive_run`), so no run
replaces another's.

Ownership is read from the file itself: records and reports carry a `schema` naming this tool, a PNG carries it
in its `Software` text chunk, an HTML page in a marker comment. An empty file holds nothing to lose.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import AgentbenchError

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
            head = path.read_bytes()[: 1 << 16]
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
        raise AgentbenchError(
            f"refusing to overwrite {path}: it is not a {kind} file written by pytest-agentbench "
            f"(choose another path for the {what})"
        )


#: what the start-up check writes (and removes at once): room for a report and a few records
PROBE_BYTES = 64 << 10


def check_writable(folder: Path, what: str) -> None:
    """One line, before anything runs, when `folder` cannot take this run's files: a read-only file system, no
    permission, no space. Probes the folder, or before it exists the nearest one above it, with an unnamed temporary
    file (O_TMPFILE where the system has it), so nothing is created or left behind."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise AgentbenchError(f"cannot write the {what} to {folder}: {probe} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe) as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise AgentbenchError(f"cannot write the {what} to {folder}: {exc.strerror or exc}") from None


class RecordLog:
    """Append-only JSONL, flushed per sample: a killed run keeps every sample it finished.

    Starts empty, or with `records` (a resumed run), written atomically before anything is appended. An append that
    fails (a full disk) is cut back off the file before the error is raised: the file holds whole records only."""

    def __init__(self, path: Path, records: Iterable[dict] = ()):
        self.path = path
        write_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        self._f = open(path, "ab", buffering=0)

    def append(self, record: dict) -> None:
        data = memoryview((json.dumps(record, sort_keys=True) + "\n").encode())
        end = self._f.seek(0, os.SEEK_END)
        try:
            while data:
                data = data[self._f.write(data) :]
        except BaseException:  # a full disk, or Ctrl-C between two partial writes
            try:
                self._f.truncate(end)
            except OSError:
                pass
            raise

    def close(self) -> None:
        self._f.close()


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """The one JSONL reader: (line number, row, problem) for each non-blank line of a JSONL (or .jsonl.gz) file; a
    line that is not a JSON object comes with row None and a one-line problem, so callers decide how loud to be."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"line {n} is not JSON ({exc.msg})"
                continue
            if isinstance(row, dict):
                yield n, row, None
            else:
                yield n, None, f"line {n} is not a JSON object"


def read_records(path: Path) -> list[dict]:
    """The rows of a records JSONL, as written (any record schema; results.records.read_records validates and
    upgrades them); a line cut short by a killed run is skipped, a missing file holds none."""
    try:
        return [
            row
            for _, row, _ in jsonl_rows(path)
            if row is not None and {"model", "suite", "task", "sample"} <= set(row)
        ]
    except OSError:
        return []


def write_atomic(path: Path, data: str | bytes) -> None:
    """The one atomic writer: `data` goes to a new file in `path`'s folder, is flushed and fsynced, replaces `path`
    (os.replace), and the folder is fsynced so the rename survives a crash. A reader (or a crash) never sees half a
    file; a failed write leaves the old file as it was and no temporary file behind. The new file gets the
    permissions a plain open() would give it (mode 0o666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a system that cannot open a folder (Windows): the rename is as durable as it gets there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder (EINVAL): nothing more to do
    finally:
        os.close(fd)


def write_json(path: Path, doc: dict) -> None:
    """A report (or any JSON document), written atomically (write_atomic)."""
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")


# -- earlier runs ----------------------------------------------------------------------------------------
RUNS_DIR = "runs"


def runs_folder(report: Path) -> Path:
    """Where earlier runs of the report at `report` are kept: `<its folder>/runs/<stem>-NNNN-<start time>/`."""
    return report.parent / RUNS_DIR


def archived_runs(report: Path) -> list[tuple[int, Path]]:
    """The kept earlier runs of `report`, (number, folder), oldest first."""
    pattern = re.compile(rf"^{re.escape(report.stem)}-(\d{{4,}})-")
    return sorted(
        (int(m.group(1)), p)
        for p in runs_folder(report).glob(f"{report.stem}-*")
        if p.is_dir() and (m := pattern.match(p.name))
    )


def archive_run(report: Path, records: Path, keep: int | None = None, trace_dir: Path | None = None) -> Path | None:
    """Before a new run writes `report` and `records`, move the previous run's (both written by this tool: `claim`
    checked them at start) into a numbered folder of `runs_folder`, with the agent traces its records name that the
    new run could write over (those in its `trace_dir`, all when None; traces elsewhere stay where they are); the moved
    report and records name their new places. Returns that folder (None: nothing to keep). `keep` (the user's
    --agentbench-keep-runs) bounds how many earlier runs are kept, oldest removed first; 0 keeps none."""
    present = [p for p in (report, records) if p.is_file() and p.stat().st_size > 0]
    if not present:
        return None
    if keep == 0:
        return None  # asked for: the new run replaces the previous one's files, as before
    doc = _read_report(report)
    started = (doc or {}).get("created_utc") or datetime.fromtimestamp(
        present[0].stat().st_mtime, timezone.utc
    ).isoformat(timespec="seconds")
    stamp = re.sub(r"[^0-9T]", "", str(started).split("+")[0])[:15] + "Z"
    number = 1 + max((n for n, _ in archived_runs(report)), default=0)
    while True:
        target = runs_folder(report) / f"{report.stem}-{number:04d}-{stamp}"
        try:
            target.mkdir(parents=True)
            break
        except FileExistsError:
            number += 1
    if records in present:
        moved = _move_traces(read_records(records), target, trace_dir)
        os.replace(records, target / records.name)
        if moved:  # the records name the traces where they now are
            RecordLog(
                target / records.name, [_with_trace(r, moved) for r in read_records(target / records.name)]
            ).close()
    if report in present:
        os.replace(report, target / report.name)
        if doc is not None and "samples_file" in doc:
            write_json(target / report.name, {**doc, "samples_file": str(target / records.name)})
    if keep is not None:
        for _, old in archived_runs(report)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _read_report(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _move_traces(records: list[dict], target: Path, within: Path | None = None) -> dict[str, str]:
    """Move the trace files a run's records name (`<model>/<scenario>/<label>/run_NNN.json`, still as the record's
    sha256 says, inside `within` when given) under `target/traces/`; {old path: new path}."""
    import hashlib

    moved: dict[str, str] = {}
    for rec in records:
        trace = rec.get("trace") or {}
        old = Path(str(trace.get("path", "")))
        if not trace.get("path") or str(old) in moved or not old.is_file() or not is_ours(old, "trace"):
            continue
        if within is not None and not old.resolve().is_relative_to(Path(within).resolve()):
            continue  # where the new run writes no trace: nothing to protect it from
        if hashlib.sha256(old.read_bytes()).hexdigest() != trace.get("sha256"):
            continue  # rewritten since by another run: not this run's trace
        new = target / "traces" / Path(*old.parts[-4:])
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(old, new)
        moved[str(old)] = str(new)
    return moved


def _with_trace(rec: dict, moved: dict[str, str]) -> dict:
    trace = rec.get("trace") or {}
    if str(trace.get("path")) in moved:
        return {**rec, "trace": {**trace, "path": moved[str(trace["path"])]}}
    return rec
