"""`--docker-host URL[,URL...]`: which engine each xdist worker uses, and bad values as one line at start."""

import pytest

from conftest import he_project, one_line_error
from pytest_agentbench.plugin.options import docker_host_of


def test_worker_i_uses_engine_i_mod_n():
    engines = "tcp://a:2375, ssh://me@b ,unix:///var/run/docker.sock"
    assert [docker_host_of(engines, f"gw{i}") for i in range(4)] == [
        "tcp://a:2375",
        "ssh://me@b",
        "unix:///var/run/docker.sock",
        "tcp://a:2375",
    ]
    assert docker_host_of(engines, "") == "tcp://a:2375"  # no xdist: the first
    assert docker_host_of(None, "gw3") is None  # not given: $DOCKER_HOST, else the local engine


@pytest.mark.parametrize(
    "args, error",
    [
        (["--sandbox", "docker", "--docker-host", "ftp://x"], "--docker-host*'ftp://x' is not an engine URL*"),
        (["--sandbox", "docker", "--docker-host", " , "], "--docker-host*needs at least one engine URL*"),
        (["--docker-host", "tcp://127.0.0.1:2375"], "--docker-host is for --sandbox docker"),
        (
            ["--sandbox", "docker", "--docker-host", "tcp://127.0.0.1:9"],
            "the Docker engine at tcp://127.0.0.1:9 does not*",
        ),
    ],
)
def test_bad_docker_hosts_are_one_line(pytester, args, error):
    he_project(pytester)
    result = pytester.runpytest_subprocess("--model", "reference", "-k", "HumanEval/0", *args)
    one_line_error(result, error)


def test_a_dead_engine_under_xdist_is_one_line_before_the_workers_start(pytester):
    """Each worker also checks its own engine, but under xdist a worker that fails to start is an INTERNALERROR: the
    controller checks every engine of the list first."""
    he_project(pytester)
    result = pytester.runpytest_subprocess(
        "--model", "reference", "-k", "HumanEval/0", "-n", "2",
        "--sandbox", "docker", "--docker-host", "tcp://127.0.0.1:9,tcp://127.0.0.1:10",
    )  # fmt: skip
    one_line_error(result, "the Docker engine at tcp://127.0.0.1:9 does not*")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
