"""The documentation: the pages build with mkdocs --strict, and every code example in the README and under docs/ runs
(sybil): python blocks are executed (a block that starts with `# test_NAME.py` is written to that file and run by
pytest with --model reference), bash blocks run in a scratch folder holding the checkout's `benchmarks/` and `.venv`,
and a block that cannot run here (a GPU, an hour, the network) is marked `<!-- skip: next "reason" -->` in its page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import pytest

sybil = pytest.importorskip("sybil", reason="the docs' examples need sybil (the [test] extra)")
from sybil import Sybil  # noqa: E402
from sybil.evaluators.python import PythonEvaluator  # noqa: E402
from sybil.example import NotEvaluated  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, SkipParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent


def run_shell(example) -> str | None:
    """A bash block, run as a script (-e: the first failing command fails the example)."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", example.parsed], capture_output=True, text=True, env=env, timeout=600
    )
    if run.returncode:
        return f"exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return None


_python = PythonEvaluator()


def run_python(example) -> str | None:
    """A python block: executed in the page's namespace, or, for a test module (`# test_NAME.py`), run by pytest."""
    first = example.parsed.lstrip().splitlines()[0]
    name = first.removeprefix("#").strip()
    if first.startswith("#") and name.startswith("test_") and name.endswith(".py") and "/" not in name:
        Path(name).write_text(example.parsed)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", name, "--model", "reference", "-q", "-p", "no:cacheprovider"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if run.returncode:
            return f"pytest {name}: exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        return None
    return _python(example)


SYBIL = Sybil(
    parsers=[
        SkipParser(),
        CodeBlockParser(language="python", evaluator=run_python),
        CodeBlockParser(language="bash", evaluator=run_shell),
    ]
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_of_the_page_run(page, tmp_path, monkeypatch):
    """Each page's examples in order (a skip directive applies to the block after it; later blocks may read what
    earlier ones wrote, e.g. the report of a run), in a scratch folder."""
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    monkeypatch.chdir(tmp_path)
    failures = []
    for example in SYBIL.parse(page).examples():
        try:
            example.evaluate()
        except NotEvaluated:  # a skip directive's own example
            continue
        except unittest.SkipTest as exc:
            assert str(exc).strip(), f"{page.name}:{example.line}: a skipped example must say why"
        except Exception as exc:  # every failing example of the page, not only the first
            failures.append(f"{page.name}:{example.line}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_every_fenced_example_is_run_or_skipped_with_a_reason():
    """A python or bash block that sybil would not see (a typo in the fence, `sh`, `console`, `shell`) would silently go
    unchecked: code examples use exactly ```python or ```bash, and other fences are data (yaml, toml, text, json)."""
    allowed = {"python", "bash", "yaml", "toml", "text", "json", ""}
    bad = []
    for page in PAGES:
        fence = False
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                if not fence and line[3:].strip() not in allowed:
                    bad.append(f"{page.name}:{n}: {line}")
                fence = not fence
    assert not bad, bad


def test_the_pages_build_with_mkdocs_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs build needs mkdocs (the [test] extra)")
    mkdocs = shutil.which("mkdocs", path=str(VENV_BIN)) or "mkdocs"
    run = subprocess.run(
        [mkdocs, "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "sandbox" / "index.html").is_file()
