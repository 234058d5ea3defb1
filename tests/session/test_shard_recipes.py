"""The scale-out recipes of docs/scale-out.md (docs/recipes/), run here: each recipe's shard command as it is written,
as subprocesses, with the variables its scheduler would set (a GitHub matrix index, $JOB_COMPLETION_INDEX,
$SLURM_ARRAY_TASK_ID), then its merge command; and each file checked by the tool of its kind that installs from PyPI
(actionlint, kubernetes-validate, shellcheck). No cluster, runner or Slurm controller runs here."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "docs" / "recipes"
BIN = Path(sys.executable).parent
TASKS = ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"]


@pytest.fixture
def workdir(tmp_path):
    """A folder laid out as the project (the recipes run from its root): benchmarks/ linked in."""
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    return tmp_path


def environ(**extra: str) -> dict[str, str]:
    """What the recipe's shell sees: this venv first on PATH, this checkout importable, a small selection (pytest reads
    PYTEST_ADDOPTS before the command's own options) and the reference model."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PYTEST_ADDOPTS": "-k '" + " or ".join(TASKS) + "'",
        **extra,
    }


def sh(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def check_merged(report_path: Path, shards: int) -> None:
    report = json.loads(report_path.read_text())
    assert report["status"] == "complete", report["status_line"]
    assert [s["index"] for s in report["merged"]["shards"]] == list(range(1, shards + 1))
    (result,) = report["results"]
    assert sorted(result["per_task"]) == sorted(TASKS) and result["pass@1"] == 1.0
    assert report["gate"]["ok"] is True
    assert report_path.with_suffix(".html").is_file()


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"{name} is not installed (pip install 'pytest-agentbench[test]')")
    return found


# -- GitHub Actions ------------------------------------------------------------------------------------------------
WORKFLOW = RECIPES / "github" / "agentbench-shards.yml"


def step(job: dict, step_id: str) -> str:
    return next(s["run"] for s in job["steps"] if s.get("id") == step_id)


def test_the_github_workflow_runs_its_shards_and_merges_them(workdir):
    flow = yaml.safe_load(WORKFLOW.read_text())
    shards = flow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert len(shards) == int(flow["env"]["SHARDS"]) and flow["jobs"]["merge"]["needs"] == "shard"
    env = environ(**{**flow["env"], "MODEL": "reference"})
    for index in shards:  # each matrix job, as a runner runs its step: bash -e, the matrix value substituted
        command = step(flow["jobs"]["shard"], "shard").replace("${{ matrix.shard }}", str(index))
        sh(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command], workdir, env)
    sh(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(flow["jobs"]["merge"], "merge")], workdir, env)
    check_merged(workdir / "merged" / "report.json", len(shards))


def test_the_github_workflow_passes_actionlint():
    done = subprocess.run(
        [tool("actionlint"), "-shellcheck", tool("shellcheck"), str(WORKFLOW)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- Kubernetes ------------------------------------------------------------------------------------------------------
K8S = RECIPES / "kubernetes"


def container(manifest: Path, name: str) -> tuple[dict, dict]:
    """(the Job, its container) from a manifest file."""
    job = next(d for d in yaml.safe_load_all(manifest.read_text()) if d and d["kind"] == "Job")
    return job, next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def k8s_argv(spec: dict, overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The container's command and args with $(VAR) references expanded from its env, as the kubelet does."""
    env = {e["name"]: e["value"] for e in spec.get("env", [])} | overrides
    expand = lambda s: re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), s)
    return [expand(a) for a in spec["command"] + spec.get("args", [])], env


def test_the_kubernetes_indexed_job_runs_its_shards_and_the_merge_job_merges(workdir):
    results = workdir / "results"
    job, shard = container(K8S / "shards.yaml", "shard")
    assert job["spec"]["completionMode"] == "Indexed"
    completions = job["spec"]["completions"]
    argv, env = k8s_argv(shard, {"MODEL": "reference", "RESULTS": str(results)})
    assert completions == int(env["SHARDS"])
    for index in range(completions):  # each pod, with the index the Job controller gives it
        sh(argv, workdir, environ(**env, JOB_COMPLETION_INDEX=str(index)))
    _, merge = container(K8S / "merge.yaml", "merge")
    argv, env = k8s_argv(merge, {"RESULTS": str(results)})
    sh(argv, workdir, environ(**env))
    check_merged(results / "merged" / "report.json", completions)


def test_the_kubernetes_manifests_validate_against_the_schemas(tmp_path):
    validate = tool("kubernetes-validate")
    for manifest in sorted(K8S.glob("*.yaml")):
        done = subprocess.run([validate, "--strict", str(manifest)], capture_output=True, text=True)
        assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr
    # the validator does catch a mistake
    bad = tmp_path / "bad.yaml"
    bad.write_text((K8S / "shards.yaml").read_text().replace("completionMode:", "completionMod:"))
    done = subprocess.run([validate, "--strict", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "completionMod" in done.stdout + done.stderr


# -- Slurm -----------------------------------------------------------------------------------------------------------
SLURM = RECIPES / "slurm"


def test_the_slurm_array_runs_its_shards_and_the_merge_script_merges(workdir):
    script = (SLURM / "shards.sbatch").read_text()
    first, last = map(int, re.search(r"^#SBATCH --array=(\d+)-(\d+)$", script, re.M).groups())
    results = workdir / "results"
    for task in range(first, last + 1):  # each array task, with the variables Slurm sets
        slurm = {
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_MIN": str(first),
            "SLURM_ARRAY_TASK_COUNT": str(last - first + 1),
        }
        sh(["bash", str(SLURM / "shards.sbatch")], workdir, environ(MODEL="reference", RESULTS=str(results), **slurm))
    sh(["bash", str(SLURM / "merge.sbatch")], workdir, environ(RESULTS=str(results), SHARDS=str(last - first + 1)))
    check_merged(results / "merged" / "report.json", last - first + 1)


def test_the_slurm_scripts_pass_bash_n_and_shellcheck():
    for script in sorted(SLURM.glob("*.sbatch")):
        subprocess.run(["bash", "-n", str(script)], check=True)
        done = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
