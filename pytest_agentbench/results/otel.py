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

import logging
import os
import random
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..errors import AgentbenchError, one_line
from .genai import (
    AGENT_NAME,
    ERROR_TYPE,
    EVALUATION_EVENT,
    EVALUATION_NAME,
    EXPLANATION,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    MAX_TOKENS,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER,
    REQUEST_MODEL,
    SCORE_LABEL,
    SCORE_VALUE,
    SEED,
    SERVER_ADDRESS,
    SERVER_PORT,
    TEMPERATURE,
    TOOL_NAME,
    TOOL_RESULT,
    VERDICT,
    cut,
    message,
    operations,
    text_part,
)

EXPORT_TIMEOUT_S = 5.0  # one OTLP batch, retries included (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT overrides)
SCOPE = "pytest-agentbench"  # the instrumentation scope (and default service.name)
INSTALL_HINT = "pip install 'pytest-agentbench[otel]'"


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
        for logged in self.messages:
            errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", logged)
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
        self.file_path = run.otlp_file_path  # a shard's file is named by its shard, as its report is
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
            attrs[INPUT_MESSAGES] = message("user", [text_part(trace_doc["prompt"])])
        answer = (trace_doc or {}).get("final_answer") or record.get("completion")
        if answer:
            attrs[OUTPUT_MESSAGES] = message("assistant", [text_part(answer)])
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
