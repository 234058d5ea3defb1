"""A pool of endpoints (backends/pool.py) against real HTTP servers on loopback (the scripted OpenAI-compatible
server of test_openai_backend): the least-loaded pick, failover through the client's own retries when an endpoint
refuses, drops a reply or answers 5xx, the back-off, the endpoint named in each completion, and the preflight."""

import threading
import time
import warnings

import pytest
from test_openai_backend import Scripted, request

from pytest_agentbench.backends import make_backend, preflight
from pytest_agentbench.errors import AgentbenchError, AgentbenchWarning, HarnessError
from pytest_agentbench.models import spec_of

pytest.importorskip("openai")


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


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sekret")


def dead_url() -> str:
    server = Scripted()
    url = server.url
    server.shutdown()
    server.server_close()
    return url  # nothing listens there now: connections are refused


def completions(server) -> int:
    return sum(path.endswith("/chat/completions") for _, path, _ in server.seen)


def test_requests_go_to_the_endpoint_with_the_fewest_in_flight():
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


def test_a_refused_endpoint_is_taken_out_and_its_request_answered_by_another():
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


def test_a_server_that_dies_holding_a_request_and_5xx_answers_fail_over():
    dying, busy, fine = Scripted(die_after=1), Scripted(answers=[(503, {})] * 50), Scripted()
    backend = make_backend(pool_spec(dying.url, busy.url, fine.url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgentbenchWarning)
        seen = [backend.generate(request()).endpoint for _ in range(6)]
    assert seen[0] == dying.url and set(seen[1:]) == {fine.url}
    assert completions(dying) == 2  # the second one died with the server, unanswered, and went elsewhere
    assert completions(busy) == 1  # answered 503 once, then out for its back-off
    fine.shutdown()


def test_the_run_fails_only_when_every_endpoint_is_down():
    backend = make_backend(pool_spec(dead_url(), dead_url(), max_retries=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgentbenchWarning)
        with pytest.raises(HarnessError, match=r"the pool of 2 endpoints: .*Connection refused"):
            backend.generate(request())


def test_preflight_warns_of_a_dead_endpoint_and_fails_when_none_answers():
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
