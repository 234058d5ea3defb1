"""The package as users install it: a wheel (not the editable checkout CI uses) in a fresh environment."""

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_a_reference_item_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("pytest_agentbench-*.whl")
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
