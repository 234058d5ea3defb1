"""The program every sandbox runs is joined from stdlib-only parts (sandbox/runner/): it must compile, stay one
`-c` argument, import nothing of this package, and run under `python -I -S` (no site, no user paths)."""

import ast
import json
import subprocess
import sys

from pytest_agentbench.sandbox import runner


def test_each_part_imports_only_the_stdlib_and_the_parts_before_it():
    seen: list[str] = []
    for name in runner.PARTS:
        tree = ast.parse((runner.join.__defaults__[0] / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names), (name, node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert node.module in seen, f"{name} imports {node.module}, not a part before it"
            elif isinstance(node, ast.ImportFrom):  # the hidden tests' pytest, when the grader's image has it
                assert node.module.split(".")[0] in {*sys.stdlib_module_names, "_pytest"}, (name, node.module)
        seen.append(name)


def test_the_joined_program_compiles_has_no_relative_import_and_fits_one_argument():
    tree = ast.parse(runner.SOURCE)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert len(runner.SOURCE.encode()) < runner.MAX_PROGRAM_BYTES
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"main", "serve", "graded", "verify", "fs", "python", "trace_run"} <= defined


def test_the_joined_program_runs_a_program_under_python_isolated_without_site(tmp_path):
    """`main()` in `python` mode, as the Docker sandbox starts it: the transport's frame, the mode's header and the
    program; the program's own output and exit status come back."""
    stdin = (
        runner.frame(json.dumps({}).encode())
        + runner.frame(json.dumps({}).encode())
        + runner.frame(b"import sys\nprint('hello from', sys.flags.isolated, sys.flags.no_site)\nsys.exit(3)\n")
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", runner.SOURCE + "\nmain()\n", "python"],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.stdout.decode().strip() == "hello from 1 1", done.stderr.decode()
    assert done.returncode == 3
