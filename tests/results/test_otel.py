"""OpenTelemetry export (--agentbench-otlp, --agentbench-otlp-file): GenAI spans of each sample, checked in the OTLP JSON
file (decoded by OpenTelemetry's own codec) and in a real receiver, Arize Phoenix, started here on loopback."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import HE_TEST, call, planned_tool_use, read_records, read_report

pytest.importorskip(
    "opentelemetry.sdk.trace", reason="the OpenTelemetry SDK is not installed: pip install -e '.[otel]'"
)
pytest.importorskip("opentelemetry.exporter.otlp.json.file", reason="pip install -e '.[otel]'")

from pytest_agentbench.results.genai import from_rounds, from_steps
from pytest_agentbench.results.otel import traces_endpoint

ROOT = Path(__file__).resolve().parents[2]
MODEL = "planned"
# tool use, scripted: a call that raises, one with bad arguments, two that work, then the right answer (passed); a
# wrong answer at once (failed). With --model planned,reference the HumanEval item runs the reference solution through
# the repair agent (passed), and `planned`, which has no plan for it, crashes there (infra: the harness's failure).
PLANS = {
    "multi_step/000": [
        call("code_executor", code="1/0"),
        call("code_executor", src="x"),
        call("code_executor", code="print(6 * 7)"),
        call("code_executor", code="print(1)"),
        "THOUGHT: done\nFINAL: {truth}",
    ],
    "symbolic/000": ["FINAL: certainly not this"],
}
SELECT = "tool_use/multi_step/000 or tool_use/symbolic/000 or HumanEval/0"


def project(pytester):
    planned_tool_use(pytester, MODEL, PLANS)
    pytester.makepyfile(test_he=HE_TEST.format(path=None))
    return pytester


def run(pj, *args, timeout=300):
    return pj.runpytest_subprocess(
        "--model", f"{MODEL},reference", "-k", SELECT, "-p", "no:cacheprovider", *args, timeout=timeout
    )


def attrs(kv: list[dict]) -> dict:
    """OTLP JSON key/values (or Phoenix's attributes) as a plain dict."""
    if isinstance(kv, dict):
        return kv
    out = {}
    for item in kv:
        ((kind, value),) = item["value"].items()
        out[item["key"]] = int(value) if kind == "intValue" else value
    return out


def file_spans(path: Path) -> list[dict]:
    """Spans of an OTLP JSON lines file, each line decoded by OpenTelemetry's own codec first."""
    from opentelemetry.proto_json.collector.trace.v1.trace_service import ExportTraceServiceRequest

    spans = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        request = ExportTraceServiceRequest.from_dict(doc)  # raises on anything that is not OTLP JSON
        assert request.resource_spans
        for rs in doc["resourceSpans"]:
            assert attrs(rs["resource"]["attributes"])["service.name"] == "pytest-agentbench"
            for ss in rs["scopeSpans"]:
                assert ss["scope"]["name"] == "pytest-agentbench"
                for s in ss["spans"]:
                    spans.append(
                        {
                            "name": s["name"],
                            "trace": s["traceId"],
                            "id": s["spanId"],
                            "parent": s.get("parentSpanId") or None,
                            "kind": s["kind"],
                            "start": int(s["startTimeUnixNano"]) / 1e9,
                            "end": int(s["endTimeUnixNano"]) / 1e9,
                            "attrs": attrs(s.get("attributes", [])),
                            "events": [
                                {"name": e["name"], "attrs": attrs(e.get("attributes", []))}
                                for e in s.get("events", [])
                            ],
                            "status": s.get("status", {}).get("code", 0),
                        }
                    )
    return spans


def by_trace(spans: list[dict]) -> dict[str, dict]:
    """trace id -> {"root": the invoke_agent span, "children": the others, in start order}."""
    traces: dict[str, dict] = {}
    for s in spans:
        t = traces.setdefault(s["trace"], {"root": None, "children": []})
        if s["parent"] is None:
            assert t["root"] is None, "one root per trace"
            t["root"] = s
        else:
            t["children"].append(s)
    for t in traces.values():
        t["children"].sort(key=lambda s: s["start"])
    return traces


def check_samples(spans: list[dict], records: list[dict]) -> dict[tuple, dict]:
    """What every export must hold, from the records' point of view; returns the traces by (model, task)."""
    traces = by_trace(spans)
    assert len(traces) == len(records), "one trace per sample"
    found = {}
    for t in traces.values():
        root, children = t["root"], t["children"]
        assert root is not None and root["name"].startswith("invoke_agent ")
        a = root["attrs"]
        found[(a["agentbench.model"], a["agentbench.task"])] = t
        assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == root["name"].split(" ", 1)[1]
        assert all(c["parent"] == root["id"] for c in children), "chat and tool spans are the sample's children"
        assert all(root["start"] - 1e-6 <= c["start"] <= c["end"] <= root["end"] + 1e-6 for c in children)
        (event,) = root["events"]
        assert (
            event["name"] == "gen_ai.evaluation.result"
            and event["attrs"]["gen_ai.evaluation.name"] == "agentbench.pass"
        )
    assert len({s["id"] for s in spans}) == len(spans), "span ids are unique"
    for rec in records:
        t = found[(rec["model"], rec["task"])]
        root = t["root"]
        a, verdict = root["attrs"], root["events"][0]["attrs"]
        assert a["agentbench.status"] == rec["status"] and verdict["gen_ai.evaluation.score.label"] == rec["status"]
        assert abs(root["start"] - rec["started_at"]) < 1e-3 and abs(root["end"] - root["start"] - rec["wall_s"]) < 1e-3
        if rec["status"] == "infra":
            assert (
                a["error.type"] == verdict["error.type"] == "infra" and "gen_ai.evaluation.score.value" not in verdict
            )
        else:
            assert verdict["gen_ai.evaluation.score.value"] == (1.0 if rec["status"] == "passed" else 0.0)
            assert (a["gen_ai.request.temperature"], a["gen_ai.request.max_tokens"], a["gen_ai.request.seed"]) == (
                rec["params"]["temperature"],
                rec["params"]["max_new_tokens"],
                rec["params"]["seed"],
            )
            assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
                rec["prompt_tokens"],
                rec["completion_tokens"],
            )
    return found


def check_tool_use(found: dict[tuple, dict], records: list[dict]) -> None:
    """The scripted multi-step run, span by span, against the steps its record keeps (times are the agent's own)."""
    rec = next(r for r in records if (r["model"], r["task"]) == (MODEL, "tool_use/multi_step/000"))
    steps = rec["extra"]["steps"]
    children = found[(MODEL, "tool_use/multi_step/000")]["children"]
    assert [c["name"] for c in children] == [f"chat {MODEL}", "execute_tool code_executor"] * 4 + [f"chat {MODEL}"]
    chats = [c for c in children if c["name"].startswith("chat")]
    tools = [c for c in children if c["name"].startswith("execute_tool")]
    replies = [s for s in steps if s["type"] in ("tool_call", "final")]
    results = [s for s in steps if s["type"] == "tool_result"]
    for span, step in zip(chats + tools, replies + results):
        assert (span["start"], span["end"]) == pytest.approx((step["started_at"], step["ended_at"]), abs=2e-6)
    for chat in chats:
        assert chat["kind"] in (3, "LLM") and chat["attrs"]["gen_ai.operation.name"] == "chat"  # CLIENT; Phoenix: LLM
        assert chat["attrs"]["gen_ai.request.model"] == MODEL and chat["attrs"]["gen_ai.provider.name"] == MODEL
        assert (chat["attrs"]["gen_ai.usage.input_tokens"], chat["attrs"]["gen_ai.usage.output_tokens"]) == (5, 2)
    raised, bad_args, ok, _ = tools
    assert [t["attrs"]["gen_ai.tool.call.id"] for t in tools] == [
        f"call_{s['i']}" for s in steps if s["type"] == "tool_call"
    ]
    assert json.loads(ok["attrs"]["gen_ai.tool.call.arguments"]) == {"code": "print(6 * 7)"}
    assert ok["attrs"]["gen_ai.tool.call.result"].strip() == "42" and "error.type" not in ok["attrs"]
    assert (
        raised["attrs"]["error.type"] == "error" and "ZeroDivisionError" in raised["attrs"]["gen_ai.tool.call.result"]
    )
    assert bad_args["attrs"]["error.type"] == "bad_args" and bad_args["start"] == bad_args["end"]  # refused, not run
    assert json.loads(bad_args["attrs"]["gen_ai.tool.call.arguments"]) == {"src": "x"}
    last = json.loads(chats[-1]["attrs"]["gen_ai.output.messages"])
    assert last[0]["role"] == "assistant" and [p["type"] for p in last[0]["parts"]] == ["text", "text"]
    assert last[0]["parts"][0]["content"] == "done"  # the THOUGHT, then the answer
    first = json.loads(chats[0]["attrs"]["gen_ai.output.messages"])
    assert first[0]["parts"] == [
        {"type": "tool_call", "id": "call_0", "name": "code_executor", "arguments": {"code": "1/0"}}
    ]
    (he,) = found[("reference", "HumanEval/0")]["children"]  # one reply, no feedback round (--iters 0)
    he_rec = next(r for r in records if (r["model"], r["task"]) == ("reference", "HumanEval/0"))
    assert he["name"] == "chat reference" and (he["start"], he["end"]) == pytest.approx(
        tuple(he_rec["extra"]["iterations"][0]["propose_at"]), abs=2e-6
    )
    assert json.loads(he["attrs"]["gen_ai.output.messages"])[0]["parts"][0]["content"] == he_rec["completion"]


def test_the_spans_file_holds_each_sample_as_genai_spans(pytester):
    pj = project(pytester)
    result = run(pj, "--agentbench-otlp-file=out/spans.jsonl", "-n", "2")  # records reach the controller from workers
    assert result.ret == 1, result.stdout.str()  # a failed and an infra sample
    records = read_records(pj)
    assert sorted((r["model"], r["task"], r["status"]) for r in records) == [
        ("planned", "HumanEval/0", "infra"),
        ("planned", "tool_use/multi_step/000", "passed"),
        ("planned", "tool_use/symbolic/000", "failed"),
        ("reference", "HumanEval/0", "passed"),
        ("reference", "tool_use/multi_step/000", "passed"),
        ("reference", "tool_use/symbolic/000", "passed"),
    ]
    spans = file_spans(pj.path / "out" / "spans.jsonl")
    found = check_samples(spans, records)
    check_tool_use(found, records)
    assert not found[(MODEL, "HumanEval/0")]["children"]  # the harness failed before any reply
    result.stdout.fnmatch_lines([f"agentbench: OpenTelemetry: {len(spans)} spans of 6 samples -> *spans.jsonl"])
    # the file is this tool's own: a rerun replaces it, and a file it did not write is never overwritten
    (pj.path / "foreign.jsonl").write_text('{"resourceSpans": []}\n')
    result = run(pj, "--agentbench-otlp-file=foreign.jsonl")
    assert result.ret == 4 and (pj.path / "foreign.jsonl").read_text() == '{"resourceSpans": []}\n'
    result.stderr.fnmatch_lines(["ERROR: agentbench: refusing to overwrite *foreign.jsonl*"])
    result = run(pj, "--agentbench-otlp-file=.agentbench/report.jsonl")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: agentbench: --agentbench-otlp-file *report.jsonl is where this run writes*"])


def test_each_shard_writes_its_own_spans_file(pytester):
    """Shards run side by side in one folder (a node's array tasks, a shared volume) name their spans file by their
    shard, as they name their report: no shard refuses or replaces another's spans."""
    pj = project(pytester)
    for index in (1, 2):
        result = run(pj, "--agentbench-otlp-file=spans.jsonl", "--agentbench-shard", f"{index}/2")
        assert result.ret in (0, 1), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    assert not (pj.path / "spans.jsonl").exists()
    seen = 0
    for index in (1, 2):
        records = [json.loads(line) for line in (pj.path / f".agentbench/report-shard-{index}-of-2.jsonl").open()]
        spans = file_spans(pj.path / f"spans-shard-{index}-of-2.jsonl")
        check_samples(spans, records)  # each sample of the shard, and no other, in the shard's file
        seen += len(records)
    assert seen == 6  # the unsharded run's samples, split between the two files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_receiver_costs_one_warning_line_and_no_result(pytester):
    pj = project(pytester)
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = run(pj, f"--agentbench-otlp=http://127.0.0.1:{port}", "--agentbench-otlp-file=spans.jsonl", timeout=180)
    took = time.monotonic() - started
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 1 and len(read_records(pj)) == 6 and read_report(pj)["results"]
    (warning,) = [line for line in out.splitlines() if "OpenTelemetry" in line and "WARNING" in line]
    assert re.fullmatch(
        rf"agentbench: WARNING: OpenTelemetry export to http://127\.0\.0\.1:{port}/v1/traces failed "
        r"\(\[Errno 111\] Connection refused\): 0 of \d+ spans delivered; the results are not affected",
        warning,
    ), warning
    assert "Traceback" not in out and "Transient error" not in out and "Failed to export" not in out
    assert len(by_trace(file_spans(pj.path / "spans.jsonl"))) == 6  # the file exporter is not held up by it
    assert took < 150, took  # a hang guard, not a timing: one export timeout (5 s) is the cost


def test_bad_otlp_options_are_one_line(pytester):
    pj = project(pytester)
    for url in ("ftp://example.org", "localhost:4318", "http://"):
        result = run(pj, f"--agentbench-otlp={url}")
        assert result.ret == 4
        result.stderr.fnmatch_lines(["ERROR: agentbench: --agentbench-otlp must be an http:// or https:// URL *"])
        assert len(result.stderr.lines) <= 2, result.stderr.str()
    assert traces_endpoint("http://h:4318") == traces_endpoint("http://h:4318/") == "http://h:4318/v1/traces"
    assert traces_endpoint("http://h:6006/v1/traces") == "http://h:6006/v1/traces"


def test_the_sdk_missing_is_one_line(pytester, monkeypatch):
    import pytest_agentbench.results.otel as otel

    monkeypatch.setattr(otel, "missing", lambda: "the OpenTelemetry SDK is not installed (...): pip install ...")
    pj = project(pytester)
    result = pj.runpytest("--model", "reference", "-k", "HumanEval/0", "--agentbench-otlp-file=s.jsonl")
    assert result.ret == 4 and not (pj.path / "s.jsonl").exists()
    result.stderr.fnmatch_lines(["ERROR: agentbench: --agentbench-otlp-file: the OpenTelemetry SDK is not installed*"])


def test_steps_without_times_get_no_invented_spans():
    old = [
        {"i": 0, "type": "thought", "text": "hm"},
        {"i": 1, "type": "tool_call", "tool": "read_file", "args": {"path": "a"}, "latency_s": 0.2},
        {"i": 2, "type": "tool_result", "tool": "read_file", "text": "x", "ok": True, "latency_s": 0.1},
        {"i": 3, "type": "final", "text": "done", "latency_s": 0.1},
    ]
    assert from_steps(old) == []  # a trace written before steps had times
    assert from_rounds([{"propose_s": 1.0, "prompt_tokens": 3}], "reply") == []
    timed = [dict(s, started_at=10.0 + s["i"], ended_at=10.5 + s["i"]) if s["type"] != "thought" else s for s in old]
    ops = from_steps(timed)
    assert [(o.kind, o.start, o.end) for o in ops] == [
        ("chat", 11.0, 11.5),
        ("execute_tool", 12.0, 12.5),
        ("chat", 13.0, 13.5),
    ]
    assert ops[1].attributes["gen_ai.tool.call.id"] == "call_1"


# -- a real receiver ------------------------------------------------------------------------------------------------
def phoenix_command() -> str | None:
    """Arize Phoenix's `phoenix` command: $AGENTBENCH_PHOENIX, or the separate venv scripts/setup.sh --tests makes
    (Phoenix's dependencies are many and pinned; it stays out of the project's venv)."""
    found = Path(os.environ.get("AGENTBENCH_PHOENIX") or ROOT / ".venv-phoenix" / "bin" / "phoenix")
    return str(found) if found.is_file() else None


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    command = phoenix_command()
    if command is None:
        pytest.skip(
            "Arize Phoenix is not installed: scripts/setup.sh --tests puts it in .venv-phoenix "
            "(or set AGENTBENCH_PHOENIX to its `phoenix` command)"
        )
    work = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(work / "phoenix.log", "wb")
    proc = subprocess.Popen([command, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a hang guard: it starts in about 30 s on two busy cores
        while True:
            if proc.poll() is not None:
                pytest.fail(f"phoenix exited ({proc.returncode}): {(work / 'phoenix.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"phoenix did not answer: {(work / 'phoenix.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def phoenix_spans(base: str, want: int) -> list[dict]:
    """All spans of Phoenix's default project, once `want` of them are stored (ingestion is asynchronous)."""
    deadline = time.monotonic() + 60
    while True:
        spans, cursor = [], None
        while True:
            page = get(f"{base}/v1/projects/default/spans?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            spans += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if len(spans) >= want or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


def as_file_span(s: dict) -> dict:
    """A span as Phoenix's REST API shows it, in the form file_spans() gives."""
    from datetime import datetime

    return {
        "name": s["name"],
        "trace": s["context"]["trace_id"],
        "id": s["context"]["span_id"],
        "parent": s["parent_id"],
        "kind": s["span_kind"],
        "start": datetime.fromisoformat(s["start_time"]).timestamp(),
        "end": datetime.fromisoformat(s["end_time"]).timestamp(),
        "attrs": s["attributes"],
        "events": [{"name": e["name"], "attrs": e["attributes"]} for e in s["events"]],
        "status": s["status_code"],
    }


def test_phoenix_receives_every_sample_nested_with_its_attributes(pytester, phoenix):
    pj = project(pytester)
    result = run(pj, f"--agentbench-otlp={phoenix}/v1/traces", "--agentbench-otlp-file=spans.jsonl")
    assert result.ret == 1, result.stdout.str()
    records = read_records(pj)
    sent = file_spans(pj.path / "spans.jsonl")
    result.stdout.fnmatch_lines([f"agentbench: OpenTelemetry: {len(sent)} spans of 6 samples -> {phoenix}/v1/traces"])
    got = [as_file_span(s) for s in phoenix_spans(phoenix, len(sent))]
    assert sorted((s["trace"], s["id"], s["parent"]) for s in got) == sorted(
        (s["trace"], s["id"], s["parent"]) for s in sent
    ), "Phoenix holds exactly the spans sent, nested"
    found = check_samples(got, records)
    check_tool_use(found, records)
    # Phoenix reads the GenAI conventions: the sample is an agent, a reply an LLM call, a tool run a tool
    kinds = {(s["name"].split(" ")[0], s["kind"]) for s in got}
    assert kinds == {("invoke_agent", "AGENT"), ("chat", "LLM"), ("execute_tool", "TOOL")}, kinds
    infra = found[(MODEL, "HumanEval/0")]["root"]
    assert infra["status"] == "ERROR" and infra["attrs"]["error.type"] == "infra"
    errors = [s for s in got if s["name"] == "execute_tool code_executor" and s["status"] == "ERROR"]
    assert sorted(s["attrs"]["error.type"] for s in errors) == ["bad_args", "error"]
