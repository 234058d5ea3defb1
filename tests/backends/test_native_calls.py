"""Native function calling (--prompt-format native) against a scripted OpenAI-compatible server on loopback (stdlib
http.server in a thread): tools go out as `tools`, calls come back from `message.tool_calls` or streamed
`delta.tool_calls`, and llama-server's HTTP 500 for a malformed call is a protocol error, asked once (not retried)."""

import json
import threading
from http.server import ThreadingHTTPServer

import pytest
from test_openai_backend import Handler as TextHandler  # its _send and quiet log

from conftest import read_records
from pytest_agentbench.agents.tools import (
    BadArgs,
    Final,
    ToolCall,
    Unparsable,
    function_of,
    read_native,
    tool_use_tools,
    tools,
)
from pytest_agentbench.backends import Completion, Request
from pytest_agentbench.benchmarks import TOOL_USE
from pytest_agentbench.errors import HarnessError
from pytest_agentbench.models import spec_of

pytest.importorskip("openai")

MALFORMED = "The model produced output that does not match the expected peg-native format"


class Scripted(ThreadingHTTPServer):
    """Answers the n-th chat request with script[n] (the last one again when the script runs out):
    ("calls", [(name, arguments JSON)]), ("text", str), ("malformed",) an HTTP 500 as llama-server's,
    ("malformed_stream",) the same error after the stream began, ("error", status) any other failure."""

    daemon_threads = True

    def __init__(self, script):
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = list(script)
        self.seen: list[dict] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(TextHandler):
    def do_GET(self):
        self._send(
            200, {"object": "list", "data": [{"id": "served", "object": "model", "created": 0, "owned_by": "x"}]}
        )

    def _chunk(self, body):
        self.wfile.write(f"data: {json.dumps(body)}\n\n".encode())
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        action = server.script[min(len(server.seen), len(server.script) - 1)]
        server.seen.append(body)
        usage = {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}
        if action[0] == "malformed":
            return self._send(500, {"error": {"code": 500, "message": MALFORMED, "type": "server_error"}})
        if action[0] == "error":
            return self._send(action[1], {"error": {"code": action[1], "message": "boom", "type": "server_error"}})
        calls = [
            {"id": f"random{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(action[1] if action[0] == "calls" else ())
        ]
        text = action[1] if action[0] == "text" else ""
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message = {"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})}
            return self._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                    "usage": usage,
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        self._chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        if action[0] == "malformed_stream":
            self._chunk({"error": {"code": 500, "message": MALFORMED, "type": "server_error"}})
            return
        if text:
            self._chunk({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        for i, call in enumerate(calls):  # as llama-server streams them: id and name first, arguments in pieces
            args = call["function"]["arguments"]
            first = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
            first["function"]["arguments"] = args[:2]
            self._chunk({**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]})
            rest = {"index": i, "function": {"arguments": args[2:]}}
            self._chunk({**base, "choices": [{"index": 0, "delta": {"tool_calls": [rest]}, "finish_reason": None}]})
        self._chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        self._chunk({**base, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")


def backend(server, **options):
    from pytest_agentbench.backends import make_backend

    return make_backend(
        spec_of(
            {
                "name": "remote",
                "backend": "openai",
                "base_url": server.url,
                "hf_id": "served",
                "options": {"timeout": 10, **options},
            }
        )
    )


FUNCTIONS = tuple(function_of(t) for t in tool_use_tools().values())


def ask(**kw):
    return Request(messages=[{"role": "user", "content": "2**100?"}], max_new_tokens=40, tools=FUNCTIONS, **kw)


@pytest.mark.parametrize("stream", [False, True])
def test_calls_come_back_from_the_message_and_from_the_stream(stream):
    server = Scripted([("calls", [("code_executor", '{"code": "print(2**100)"}'), ("symbolic_math", "{}")])])
    got = backend(server, stream=stream).generate(ask(tool_choice="required"))
    assert got.tool_calls == [
        {"name": "code_executor", "arguments": '{"code": "print(2**100)"}'},
        {"name": "symbolic_math", "arguments": "{}"},
    ]
    assert got.protocol_error is None and got.finish_reason == "tool_calls" and got.prompt_tokens == 30
    if stream:
        assert got.ttft_s is not None  # the first call's delta is the first token
    sent = server.seen[0]
    assert sent["tools"] == [json.loads(json.dumps(f)) for f in FUNCTIONS] and sent["tool_choice"] == "required"
    server.shutdown()


def test_a_request_without_tools_sends_no_tools():
    server = Scripted([("text", "FINAL: 4")])
    got = backend(server).generate(Request(messages=[{"role": "user", "content": "2+2?"}]))
    assert got.text == "FINAL: 4" and got.tool_calls == []
    assert "tools" not in server.seen[0] and "tool_choice" not in server.seen[0]
    server.shutdown()


@pytest.mark.parametrize("stream", [False, True])
def test_a_malformed_native_call_is_a_protocol_error_asked_once(stream):
    server = Scripted([("malformed_stream",) if stream else ("malformed",)])
    got = backend(server, stream=stream, max_retries=4).generate(ask())
    assert got.protocol_error and "does not match the expected" in got.protocol_error
    assert got.text == "" and got.tool_calls == []
    assert len(server.seen) == 1  # the openai client would have retried a 500 four times
    assert isinstance(read_native(got, tool_use_tools()), Unparsable)
    server.shutdown()


def test_other_server_errors_are_still_retried_and_then_infra():
    server = Scripted([("error", 500)])
    with pytest.raises(HarnessError, match="HTTP 500"):
        backend(server, max_retries=1).generate(ask())
    assert len(server.seen) == 2
    server.shutdown()


def test_a_malformed_message_without_tools_is_infra_as_before():
    server = Scripted([("malformed",)])
    with pytest.raises(HarnessError, match="HTTP 500"):
        backend(server, max_retries=0).generate(Request(messages=[{"role": "user", "content": "hi"}]))
    server.shutdown()


def test_the_generation_cache_keys_tools_and_keeps_text_keys_unchanged():
    from pytest_agentbench.backends.cache import request_key

    text = Request(messages=[{"role": "user", "content": "x"}])
    assert request_key({"k": 1}, text) == request_key({"k": 1}, Request(messages=[{"role": "user", "content": "x"}]))
    native = Request(messages=[{"role": "user", "content": "x"}], tools=FUNCTIONS)
    assert len({request_key({}, text), request_key({}, native), request_key({}, ask(tool_choice="required"))}) == 3


def test_a_native_reply_is_read_with_the_text_protocols_checks():
    available = tools("read_file", "run_cmd")

    def read(**kw):
        return read_native(Completion(text=kw.pop("text", ""), **kw), available)

    assert read(tool_calls=[{"name": "read_file", "arguments": '{"path": "a.py"}'}]) == ToolCall(
        "read_file", {"path": "a.py"}
    )
    assert read(text="done: 42") == Final("done: 42")
    assert read(text="2**10 is\nFINAL: 1024") == Final("1024")  # the line a task asks for, read as the protocol does
    assert "empty reply" in read().reason
    assert "unknown tool 'rm'" in read(tool_calls=[{"name": "rm", "arguments": "{}"}]).reason
    bad = read(tool_calls=[{"name": "read_file", "arguments": '{"file": "a.py"}'}])
    assert isinstance(bad, BadArgs) and bad.tool == "read_file"
    assert "not JSON" in read(tool_calls=[{"name": "read_file", "arguments": '{"path": a.py}'}]).reason
    assert "not a JSON object" in read(tool_calls=[{"name": "read_file", "arguments": "[1]"}]).reason
    assert "malformed native call" in read(protocol_error="does not match").reason
    two = read(tool_calls=[{"name": "run_cmd", "arguments": '{"cmd": ["ls"]}'}, {"name": "x", "arguments": "{}"}])
    assert two == ToolCall("run_cmd", {"cmd": ["ls"]})  # one call per step: the first


def test_function_schemas_of_the_tools():
    schema = function_of(tools("run_cmd")["run_cmd"])
    assert schema["type"] == "function" and schema["function"]["name"] == "run_cmd"
    params = schema["function"]["parameters"]
    assert params["required"] == ["cmd"] and params["additionalProperties"] is False
    assert params["properties"]["cmd"]["type"] == "array" and "title" not in params["properties"]["cmd"]


MODELS = """models:
  remote:
    backend: openai
    base_url: {url}
    hf_id: served
"""


def native_item(pytester, server):
    """Run tool_use/execution/000 in the native format against `server`."""
    data = TOOL_USE
    pytester.makefile(".yaml", models=MODELS.format(url=server.url))
    pytester.makepyfile(
        test_tu=f"""
import pytest
from pytest_agentbench.suites.tool_use import ToolUse

@pytest.mark.agentbench(ToolUse({str(data)!r}))
def test_tool_use(outcome):
    outcome.check()
"""
    )
    return pytester.runpytest_subprocess(
        "--model", "remote", "--prompt-format", "native", "-k", "execution/000", "-p", "no:cacheprovider"
    )


def test_a_native_tool_use_item_end_to_end_through_the_endpoint(pytester):
    """The whole path: the suite's native format, the tool loop, the tool in the sandbox, the history the next request
    carries (the call under a stable id, its result as a `tool` message), the record."""
    server = Scripted([("calls", [("code_executor", '{"code": "print(6 * 7)"}')]), ("text", "42")])
    result = native_item(pytester, server)
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    (rec,) = read_records(pytester)
    assert rec["task"].endswith("-native") and rec["extra"]["prompt_format"] == "native"
    assert rec["extra"]["first_choice"] == "code_executor" and rec["extra"]["tool_calls_ok"] == 1
    assert rec["extra"]["answer"] == "42" and rec["extra"]["protocol_errors"] == 0
    first, second = server.seen
    assert {t["function"]["name"] for t in first["tools"]} == {"code_executor", "symbolic_math"}
    assert "TOOL_CALL" not in first["messages"][0]["content"]  # no text protocol in a native prompt
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"] == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "code_executor", "arguments": '{"code": "print(6 * 7)"}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "call_0", "content": "42"}
    server.shutdown()


def test_a_malformed_native_call_ends_a_tool_use_item_as_unparsable(pytester):
    server = Scripted([("malformed",)])
    result = native_item(pytester, server)
    assert result.ret == 1, result.stdout.str()[-2000:]
    (rec,) = read_records(pytester)
    assert rec["status"] == "unparsable" and "malformed native call" in rec["reason"]
    assert rec["extra"]["first_choice"] == "unparsable" and rec["extra"]["protocol_errors"] == 1
    assert len(server.seen) == 1
    from pytest_agentbench.results.table import study_table

    (row,) = study_table([pytester.path / ".agentbench" / "report.jsonl"]).to_dict("records")
    assert (row["prompt_format"], row["protocol_errors"], row["protocol_error_rate"]) == ("native", 1, 1.0)
    server.shutdown()


def test_vllm_serve_without_a_tool_parser_is_refused_in_one_line():
    from pytest_agentbench.backends.openai_api import ServedBackend
    from pytest_agentbench.errors import AgentbenchError
    from pytest_agentbench.serving import Served

    spec = spec_of({"name": "q", "backend": "vllm", "hf_id": "Qwen/Qwen2.5-0.5B-Instruct"})
    served = Served("q", "vllm", "http://127.0.0.1:9/v1", "q", 1, [], "log", {"kind": "served", "engine": "vllm"})
    with pytest.raises(AgentbenchError, match="options.tool_call_parser"):
        ServedBackend(spec, served).generate(ask())
