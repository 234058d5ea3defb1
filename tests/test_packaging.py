"""The package as users install it: a wheel (not the editable checkout CI uses) in a fresh environment."""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(tmp_path: Path) -> Path:
    """The checkout's wheel, built without isolation (the build backend from this environment)."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("pytest_agentbench-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_installs_and_runs_a_reference_item_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies (torch, transformers, ...) come from this environment; pytest_agentbench from the wheel.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "test_he.py").write_text(
        textwrap.dedent("""
        import pytest

        @pytest.mark.agentbench("humaneval")
        def test_he(outcome):
            outcome.check()
    """)
    )
    where = subprocess.run(
        [str(python), "-c", "import pytest_agentbench; print(pytest_agentbench.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    run = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--model",
            "reference",
            "-k",
            "HumanEval/0",
            "--agentbench-plot",
            "plot.png",
            "--agentbench-html",
            "page.html",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
    assert (work / "plot.png").read_bytes()[:4] == b"\x89PNG"
    page = (work / "page.html").read_text()  # the vendored highlighter and diff came with the wheel
    assert "Prism" in page and "diffLines" in page
    # the console script the wheel installs is the command line of `python -m pytest_agentbench`
    script = subprocess.run([str(venv / "bin" / "agentbench"), "--help"], capture_output=True, text=True, cwd=work)
    assert script.returncode == 0 and all(
        c in script.stdout for c in ("compare", "table", "check-scenario", "html", "plots")
    ), script.stdout + script.stderr
    assert (
        subprocess.run(
            [str(venv / "bin" / "agentbench"), "plots", "report.json"], capture_output=True, cwd=work
        ).returncode
        == 2
    )  # no such report: one line, exit 2


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_shipped_suites_from_any_folder(tmp_path):
    """The README's wheel command: the wheel and its required dependencies from the package index (no torch: a
    reference run needs none) in a fresh venv, then `pytest --pyargs pytest_agentbench.benchmarks` from a folder
    outside the checkout finds the shipped suites and their data (scenarios, tool-use data) in the package."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel, never a checkout on the path
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the checkout: `python -m pip` would take its egg-info for an installed copy
    )
    if pip.returncode and any(w in pip.stderr for w in ("NewConnectionError", "Temporary failure in name resolution")):
        pytest.skip(f"the package index cannot be reached: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr[-3000:]
    heavy = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print([m for m in ('torch', 'transformers', 'datasets') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    )
    assert heavy.stdout.strip() == "[]", heavy.stdout  # the [hf] extra stays out of a plain install
    assert (venv / "bin" / "agentbench").is_file()  # the wheel itself went in
    work = tmp_path / "elsewhere"
    work.mkdir()
    for select in (
        ["-m", "humaneval", "-k", "HumanEval/0 or HumanEval/1 or HumanEval/2"],
        ["-m", "scenarios", "-k", "fix_failing_test/default"],
        ["-m", "tool_use", "-k", "tool_use/symbolic/000"],
    ):
        run = subprocess.run(
            [str(venv / "bin" / "pytest"), "--pyargs", "pytest_agentbench.benchmarks", "--model", "reference", "-q"]
            + ["-p", "no:cacheprovider", *select],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        wanted = 3 if "humaneval" in select else 1
        assert f"{wanted} passed" in run.stdout, run.stdout[-2000:]
        report = json.loads((work / ".agentbench" / "report.json").read_text())
        assert report["results"][0]["pass@1"] == 1.0
