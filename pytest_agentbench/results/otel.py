"""OpenTelemetry export of every finished sample (`--agentbench-otlp URL`, `--agentbench-otlp-file PATH`), as spans of
the OpenTelemetry GenAI semantic conventions (status Development; names as in semantic-conventions v1.41 and the
semantic-conventions-genai repository that continues them):

    invoke_agent {suite}     one trace per sample (INTERNAL): model, parameters, token totals, the task's prompt and
                             final answer, and the verdict as a `gen_ai.evaluation.result` event
      chat {model}           one per model reply (CLIENT): tokens, finish reason, time to first token, the reply
      execute_tool {tool}    one per tool run (INTERNAL): call id, arguments and result, error.type when it failed

Times are the agents' own wall-clock times (trace steps' `started_at`/`ended_at`, the repair agent's rounds, the
record's `started_at` + `wall_s`); none is invented: a step without them (a trace written before they were recorded)
gets no span. Texts are cut to TEXT_LIMIT characters. The verdict is an event of the sample's span: the conventions
define `gen_ai.evaluation.result` as an event parented to the operation it evaluates, and trace viewers (Phoenix
among them) show span events, where a separate log signal would need a logs pipeline.

Spans go through the OpenTelemetry SDK and its exporters: OTLP/HTTP protobuf (opentelemetry-exporter-otlp-proto-http)
and OpenTelemetry's file exporter (opentelemetry-exporter-otlp-json-file: OTLP JSON, one ExportTraceServiceRequest per
line, which the Collector's `otlpjsonfile` receiver reads). The exporter is a plugin on the controller, where records
arrive (`pytest_agentbench_record`); batches leave on a background thread. A receiver that fails a batch (after the
exporter's own retries, within its timeout) is taken as down: later batches are dropped at once, and the run ends
with one warning line. Nothing here can cost a result.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..errors import AgentbenchError, one_line

TEXT_LIMIT = 4000  # characters of a reply, tool argument or tool result kept in a span
EXPORT_TIMEOUT_S = 5.0  # one OTLP batch, retries included (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT overrides)
SCOPE = "pytest-agentbench"  # the instrumentation scope (and default service.name)
INSTALL_HINT = "pip install 'pytest-agentbench[otel]'"

# Attribute and event names of the GenAI semantic conventions.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
TEMPERATURE = "gen_ai.request.temperature"
MAX_TOKENS = "gen_ai.request.max_tokens"
SEED = "gen_ai.request.seed"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
VERDICT = "agentbench.pass"  # gen_ai.evaluation.name of the verdict: score 1.0 passed, 0.0 not


def traces_endpoint(url: str) -> str:
    """The OTLP/HTTP traces URL for `url`: as given when it has a path, else with /v1/traces (a Collector's base
    URL). ValueError (one line) when it is no http(s) URL with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://localhost:4318")
    return url.strip() if parts.path not in ("", "/") else url.strip().rstrip("/") + "/v1/traces"


def missing() -> str | None:
    """Why the export cannot run here (the SDK or its exporters are not installed), or None."""
    try:
        import opentelemetry.exporter.otlp.json.file
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        return f"the OpenTelemetry SDK is not installed ({one_line(exc)}): {INSTALL_HINT}"
    return None


# -- a sample as operations -----------------------------------------------------------------------------------------
@dataclass
class Operation:
    """One model reply (`chat`) or tool run (`execute_tool`) of a sample, with its times (Unix seconds)."""

    kind: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def cut(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = text or ""
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more characters]"


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _message(role: str, parts: list[dict], finish_reason: str | None = None) -> str:
    """gen_ai.input/output.messages (their JSON schema), as a JSON string: OpenTelemetry attributes hold no maps."""
    message: dict[str, Any] = {"role": role, "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return _json([message])


def _text(content: str | None) -> dict:
    return {"type": "text", "content": cut(content)}


def _chat(step_or_round: dict, parts: list[dict]) -> Operation:
    s = step_or_round
    attrs: dict[str, Any] = {
        INPUT_TOKENS: int(s.get("prompt_tokens") or 0),
        OUTPUT_TOKENS: int(s.get("completion_tokens") or 0),
    }
    if s.get("finish_reason"):
        attrs[FINISH_REASONS] = [s["finish_reason"]]
    if s.get("ttft_s") is not None:
        attrs[TIME_TO_FIRST_CHUNK] = float(s["ttft_s"])
    if parts:
        attrs[OUTPUT_MESSAGES] = _message("assistant", parts, s.get("finish_reason"))
    return Operation("chat", s["started_at"], s["ended_at"], attrs)


def _tool(name: str, call_id: str, start: float, end: float, arguments, result: str, error: str | None) -> Operation:
    attrs: dict[str, Any] = {TOOL_NAME: name, TOOL_TYPE: "function", TOOL_CALL_ID: call_id, TOOL_RESULT: cut(result)}
    if arguments is not None:
        attrs[TOOL_ARGUMENTS] = cut(_json(arguments))
    return Operation("execute_tool", start, end, attrs, error)


def from_steps(steps: Iterable[dict]) -> list[Operation]:
    """Operations of an agent's trace steps (trace.Step as dicts): each reply's action step with its thought before
    it, each tool_result with the tool_call it answers."""
    ops: list[Operation] = []
    thought: str | None = None
    call: dict | None = None
    for step in steps:
        kind = step.get("type")
        if kind == "thought":
            thought = step.get("text")
            continue
        if kind in ("tool_call", "final", "error") and step.get("started_at") is not None:
            parts = [_text(thought)] if thought else []
            if kind == "tool_call" and step.get("args") is not None:
                parts.append(
                    {
                        "type": "tool_call",
                        "id": f"call_{step['i']}",
                        "name": step.get("tool"),
                        "arguments": step["args"],
                    }
                )
            else:
                parts.append(_text(step.get("reply") or step.get("text")))
            ops.append(_chat(step, parts))
        thought = None
        if kind == "tool_call":
            call = step
        elif kind == "tool_result":
            if step.get("started_at") is not None:
                ops.append(
                    _tool(
                        step.get("tool") or "tool",
                        f"call_{(call or step)['i']}",
                        step["started_at"],
                        step["ended_at"],
                        (call or {}).get("args"),
                        step.get("text", ""),
                        None if step.get("ok") else step.get("error") or "error",
                    )
                )
            call = None
    return ops


def from_rounds(rounds: list[dict], last_reply: str) -> list[Operation]:
    """Operations of the repair agent's rounds (the record's `extra.iterations`): propose = a reply, execute = the
    feedback tests run as the tool `run_tests`. Only the last reply's text is in the record."""
    ops: list[Operation] = []
    for n, rnd in enumerate(rounds):
        if rnd.get("propose_at"):
            start, end = rnd["propose_at"]
            ops.append(
                _chat(
                    {**rnd, "started_at": start, "ended_at": end}, [_text(last_reply)] if n == len(rounds) - 1 else []
                )
            )
        if rnd.get("execute_at"):
            start, end = rnd["execute_at"]
            status = rnd.get("feedback") or ""
            ops.append(
                _tool(
                    "run_tests",
                    f"call_{n}",
                    start,
                    end,
                    None,
                    status,
                    None if status == "passed" else status or "error",
                )
            )
    return ops


def _trace_file(record: dict) -> dict | None:
    """The agent's trace file named by the record, when it is still the file the record names (same sha256)."""
    ref = record.get("trace")
    if not isinstance(ref, dict) or not ref.get("path"):
        return None
    import hashlib

    try:
        data = Path(ref["path"]).read_bytes()
    except OSError:
        return None
    if ref.get("sha256") and hashlib.sha256(data).hexdigest() != ref["sha256"]:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def operations(record: dict) -> tuple[list[Operation], dict | None]:
    """A record's model replies and tool runs, from what its suite keeps: the trace file (agent scenarios), the
    steps in `extra.steps` (tool use), the repair agent's rounds (HumanEval, HumanEvalFix); and the trace file."""
    trace = _trace_file(record)
    extra = record.get("extra") or {}
    if trace is not None:
        return from_steps(trace.get("steps") or []), trace
    if isinstance(extra.get("steps"), list):
        return from_steps(extra["steps"]), None
    if isinstance(extra.get("iterations"), list):
        return from_rounds(extra["iterations"], record.get("completion") or ""), None
    return [], None


# -- the exporter -----------------------------------------------------------------------------------------------------
class _Delivery:
    """A SpanExporter in front of the OTLP or file exporter: counts what was delivered, and after the first batch that
    failed drops the rest at once (a dead receiver costs one export timeout, not one per batch)."""

    def __init__(self, inner, where: str, log: _LogCatcher):
        from opentelemetry.sdk.trace.export import SpanExporter

        assert isinstance(inner, SpanExporter)
        self.inner, self.where, self.log = inner, where, log
        self.sent = self.lost = 0
        self.failed: str | None = None

    # SpanExporter's interface (BatchSpanProcessor calls these)
    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.failed is None:
            try:
                result = self.inner.export(spans)
            except Exception as exc:  # an exporter's bug must not reach the run
                result, self.failed = SpanExportResult.FAILURE, one_line(exc)
            if result is SpanExportResult.SUCCESS:
                self.sent += len(spans)
                return result
            self.failed = self.failed or self.log.reason() or "the export failed"
        self.lost += len(spans)
        return SpanExportResult.FAILURE

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _LogCatcher(logging.Handler):
    """While the export runs, the OpenTelemetry SDK's own log lines (retries, failures) are kept here instead of
    reaching pytest's log capture, which would show them in some unrelated test's report; the first names the
    reason of a failed export."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("opentelemetry")
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 20:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed log call: nothing to keep
                pass

    def reason(self) -> str | None:
        for message in self.messages:
            errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", message)
            if errno:
                return errno.group(0).strip()
        return cut(self.messages[0].split("\n", 1)[0], 200) if self.messages else None

    def close(self) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
        super().close()


class OtelExport:
    """The plugin that exports each new record of the run (registered on the controller by plugin.py)."""

    def __init__(self, run):
        from .storage import claim

        opts = run.options
        why = missing()
        if why is not None:
            flag = "--agentbench-otlp" if opts.otlp else "--agentbench-otlp-file"
            raise AgentbenchError(f"{flag}: {why}")
        self.run = run
        self.url = opts.otlp
        self.file_path = run.invocation_dir / opts.otlp_file if opts.otlp_file else None
        if self.file_path is not None:
            taken = {run.json_path, run.jsonl_path, run.plot_path, run.html_path} - {None}
            if self.file_path.resolve() in {p.resolve() for p in taken}:
                raise AgentbenchError(
                    f"--agentbench-otlp-file {self.file_path} is where this run writes its report "
                    "or records: give it another path"
                )
            claim(self.file_path, "otlp", "OpenTelemetry spans file")
        self.samples = self.unexported = 0
        self.problem: str | None = None  # the first record that could not be turned into spans, and why
        self._said = False  # the summary lines were shown
        self._closed = False
        self._specs = {m.name: m for m in run.models}
        self._log = _LogCatcher()
        self._stream = None
        self._provider = None
        self._deliveries: list[_Delivery] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        from opentelemetry.exporter.otlp.json.file import FileSpanExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from ..provenance import package_versions

        version = package_versions()["pytest-agentbench"] or "unknown"
        resource = Resource.create({"service.version": version})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SCOPE}))  # OTEL_SERVICE_NAME wins when set
        self._provider = TracerProvider(
            resource=resource, id_generator=_system_random_ids(), shutdown_on_exit=False
        )  # close() shuts it down
        if self.url:
            timeout = (
                None
                if ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" in os.environ or "OTEL_EXPORTER_OTLP_TIMEOUT" in os.environ)
                else EXPORT_TIMEOUT_S
            )
            self._add(OTLPSpanExporter(endpoint=self.url, timeout=timeout), self.url, BatchSpanProcessor)
        if self.file_path is not None:
            try:
                self.file_path.parent.mkdir(parents=True, exist_ok=True)
                self._stream = open(self.file_path, "w", encoding="utf-8")
            except OSError as exc:
                raise AgentbenchError(f"--agentbench-otlp-file {self.file_path}: {one_line(exc)}") from None
            self._add(FileSpanExporter(stream=self._stream), str(self.file_path), BatchSpanProcessor)
        self._tracer = self._provider.get_tracer(SCOPE, version)

    def _add(self, exporter, where: str, processor) -> None:
        delivery = _Delivery(exporter, where, self._log)
        self._deliveries.append(delivery)
        # batches of at most 128 spans (a few MB at most with texts cut at TEXT_LIMIT) so that one fits in the timeout
        self._provider.add_span_processor(processor(delivery, max_queue_size=1 << 16, max_export_batch_size=128))

    # -- hooks ----------------------------------------------------------------------------------------------------
    def pytest_agentbench_record(self, record, config):
        """A finished sample (before the controller writes it): its spans join the export queue."""
        if self._closed:
            return
        try:
            self.emit(record)
            self.samples += 1
        except Exception as exc:  # the record is written whatever happens here
            self.unexported += 1
            self.problem = self.problem or f"{record.get('task')!r}: {one_line(exc)}"

    def pytest_sessionfinish(self, session):
        self.close()

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        for line, bad in self.summary():
            terminalreporter.write_line(line, yellow=bad)
        self._said = True

    def pytest_unconfigure(self, config):
        self.close()
        if not self._said:  # no terminal summary (-p no:terminal, or a usage error): warnings go to stderr
            self._said = True
            for line, bad in self.summary():
                if bad or self.samples:
                    sys.stderr.write(line + "\n")

    # -- spans -----------------------------------------------------------------------------------------------------
    def emit(self, record: dict) -> None:
        """Turn one record into its spans (ended, so the batch processors take them)."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        ops, trace_doc = operations(record)
        started = record.get("started_at")
        wall = float(record.get("wall_s") or 0.0)
        if started is None:  # an older record: the sample's span spans its operations, or is the moment it arrived
            import time

            started = min((op.start for op in ops), default=time.time() - wall)
        end = max([started + wall] + [op.end for op in ops])
        status = str(record.get("status", ""))
        agent_attrs = self._agent_attributes(record, trace_doc)
        root = self._tracer.start_span(
            f"invoke_agent {record.get('suite')}",
            kind=SpanKind.INTERNAL,
            attributes=agent_attrs,
            start_time=_ns(started),
        )
        parent = trace.set_span_in_context(root)
        model = agent_attrs.get(REQUEST_MODEL, "")
        common = {
            k: agent_attrs[k]
            for k in (PROVIDER, REQUEST_MODEL, TEMPERATURE, MAX_TOKENS, SEED, SERVER_ADDRESS, SERVER_PORT)
            if k in agent_attrs
        }
        for op in ops:
            if op.kind == "chat":
                span = self._tracer.start_span(
                    f"chat {model}",
                    context=parent,
                    kind=SpanKind.CLIENT,
                    attributes={OPERATION: "chat", **common, **op.attributes},
                    start_time=_ns(op.start),
                )
            else:
                span = self._tracer.start_span(
                    f"execute_tool {op.attributes[TOOL_NAME]}",
                    context=parent,
                    kind=SpanKind.INTERNAL,
                    attributes={OPERATION: "execute_tool", **op.attributes},
                    start_time=_ns(op.start),
                )
                if op.error:
                    span.set_attribute(ERROR_TYPE, op.error)
                    span.set_status(Status(StatusCode.ERROR, cut(op.attributes.get(TOOL_RESULT), 300)))
            span.end(end_time=_ns(op.end))
        verdict: dict[str, Any] = {
            EVALUATION_NAME: VERDICT,
            SCORE_LABEL: status,
            EXPLANATION: cut(record.get("reason") or status, 1000),
        }
        if status == "infra":  # the harness could not evaluate the sample: no score
            verdict[ERROR_TYPE] = "infra"
            root.set_attribute(ERROR_TYPE, "infra")
            root.set_status(Status(StatusCode.ERROR, cut(record.get("reason"), 300)))
        else:
            verdict[SCORE_VALUE] = 1.0 if status == "passed" else 0.0
        root.add_event(EVALUATION_EVENT, verdict, timestamp=_ns(end))
        root.end(end_time=_ns(end))

    def _agent_attributes(self, record: dict, trace_doc: dict | None) -> dict[str, Any]:
        spec = self._specs.get(record.get("model"))
        served = record.get("served_by") or {}
        params = record.get("params") or {}
        attrs: dict[str, Any] = {
            OPERATION: "invoke_agent",
            PROVIDER: served.get("engine") or (getattr(spec, "backend", None) or "unknown"),
            AGENT_NAME: str(record.get("suite")),
            REQUEST_MODEL: (getattr(spec, "hf_id", None) or str(record.get("model"))),
            INPUT_TOKENS: int(record.get("prompt_tokens") or 0),
            OUTPUT_TOKENS: int(record.get("completion_tokens") or 0),
        }
        for key, name, kind in (
            (TEMPERATURE, "temperature", float),
            (MAX_TOKENS, "max_new_tokens", int),
            (SEED, "seed", int),
        ):
            if params.get(name) is not None:
                attrs[key] = kind(params[name])
        url = served.get("base_url") or getattr(spec, "base_url", None)
        if url:
            parts = urlsplit(url)
            if parts.hostname:
                attrs[SERVER_ADDRESS] = parts.hostname
                attrs[SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        if trace_doc and trace_doc.get("prompt"):
            attrs[INPUT_MESSAGES] = _message("user", [_text(trace_doc["prompt"])])
        answer = (trace_doc or {}).get("final_answer") or record.get("completion")
        if answer:
            attrs[OUTPUT_MESSAGES] = _message("assistant", [_text(answer)])
        attrs.update(
            {
                "agentbench.model": str(record.get("model")),
                "agentbench.suite": str(record.get("suite")),
                "agentbench.task": str(record.get("task")),
                "agentbench.sample": int(record.get("sample", 0)),
                "agentbench.status": str(record.get("status")),
                "agentbench.reason": cut(record.get("reason"), 1000),
                "agentbench.wall_s": float(record.get("wall_s") or 0.0),
                "agentbench.model_s": float(record.get("model_s") or 0.0),
                "agentbench.sandbox_s": float(record.get("sandbox_s") or 0.0),
            }
        )
        if record.get("config_sha"):
            attrs["agentbench.config_sha"] = str(record["config_sha"])
        if isinstance(record.get("trace"), dict) and record["trace"].get("path"):
            attrs["agentbench.trace"] = str(record["trace"]["path"])
        return attrs

    # -- the end ---------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and stop (bounded: a receiver that fails a batch is dropped after one export timeout)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._provider is not None:
                self._provider.shutdown()
        except Exception as exc:  # the run's results are written already; say why the spans may be incomplete
            self.problem = self.problem or f"shutting the exporter down: {one_line(exc)}"
        self._close_parts()

    def _close_parts(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._log.close()

    def summary(self) -> list[tuple[str, bool]]:
        """One line per destination: (text, is it a warning)."""
        lines = []
        for d in self._deliveries:
            if d.failed is None and d.lost == 0:
                lines.append(
                    (f"agentbench: OpenTelemetry: {d.sent} spans of {self.samples} samples -> {d.where}", False)
                )
            else:
                lines.append(
                    (
                        f"agentbench: WARNING: OpenTelemetry export to {d.where} failed ({d.failed}): "
                        f"{d.sent} of {d.sent + d.lost} spans delivered; the results are not affected",
                        True,
                    )
                )
        if self.unexported:
            lines.append(
                (
                    f"agentbench: WARNING: {self.unexported} sample(s) not exported as spans (first: "
                    f"{self.problem}); the results are not affected",
                    True,
                )
            )
        return lines


def _system_random_ids():
    """The SDK's random ids, drawn from the OS: its default draws from Python's global generator, which the worker
    seeds for every sample (worker.seed_generators), so every sample's trace would get the same ids."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class SystemRandomIds(RandomIdGenerator):
        _random = random.SystemRandom()

        def generate_span_id(self) -> int:
            return self._random.getrandbits(64) or self.generate_span_id()

        def generate_trace_id(self) -> int:
            return self._random.getrandbits(128) or self.generate_trace_id()

    return SystemRandomIds()


def _ns(seconds: float) -> int:
    return int(round(float(seconds) * 1e9))
