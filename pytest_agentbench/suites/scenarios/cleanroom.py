"""The clean room commands run in after the agent (`command:` checks): the workspace the agent left, but with

- the scenario's protected files as they started: those its `unchanged` checks and `forbidden.write` rules
  name (a test the agent edited runs as the scenario wrote it);
- configuration the agent could plant, which Python, pytest or git read from a folder on their own, restored to its
  starting content or set aside: conftest.py, pytest.ini, tox.ini, setup.cfg, pyproject.toml, sitecustomize.py,
  usercustomize.py, `.pth` files, the user site and config folders of HOME (the workspace), .git/config;
  unless the command check allows it (`allow:` globs);
- no bytecode the workspace did not start with (`__pycache__`, `.pytest_cache`), which Python or pytest would run in
  place of the source beside it;
- no top-level module or package the workspace did not start with, unless the scenario declares it (`packages:`)
  or the check allows it: `python -m` puts the workspace first on sys.path, so an empty folder `pytest/` would run
  instead of pytest, and a package named like an optional import of the standard library (`org`) would run too;
- an environment without the user site (PYTHONNOUSERSITE) and with git's hooks and fsmonitor off.
"""

from __future__ import annotations

import hashlib
import json

from .checks import is_cache, matches

#: what Python, pytest and git read from a folder on their own (pytest's own list: CONFIG_LOADERS_BY_NAME)
CONFIG = (
    "conftest.py",
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "tox.ini",
    "setup.cfg",
    "pyproject.toml",
    "sitecustomize.py",
    "usercustomize.py",
    "*.pth",
    "/.local/**",
    "/.config/**",
    "/.gitconfig",
    "/.pythonrc*",
)
ENV = {
    "PYTHONNOUSERSITE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "GIT_CONFIG_COUNT": "3",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "GIT_CONFIG_KEY_1": "core.hooksPath",
    "GIT_CONFIG_VALUE_1": "/dev/null",
    "GIT_CONFIG_KEY_2": "core.fsmonitor",
    "GIT_CONFIG_VALUE_2": "false",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}
_IMPORTABLE: dict[tuple, frozenset] = {}
PROBE = (
    "import json, pkgutil, sys\n"
    "names = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {m.name for m in pkgutil.iter_modules()}\n"
    "print(json.dumps(sorted(names)))\n"
)


def importable(sandbox) -> frozenset:
    """Top-level module names Python imports from its own environment in this sandbox (stdlib, site-packages)."""
    key = (sandbox.kind, getattr(sandbox, "image", None))
    if key not in _IMPORTABLE:
        run = sandbox.exec(["python3", "-I", "-c", PROBE], timeout=60)
        try:
            _IMPORTABLE[key] = frozenset(json.loads(run.stdout))
        except ValueError:
            from ...errors import HarnessError

            raise HarnessError(f"cannot list the sandbox's Python modules: {run.stderr.strip()[-200:]}") from None
    return _IMPORTABLE[key]


def top_level_module(path: str) -> str | None:
    """The module name a top-level workspace entry would be imported as, or None."""
    if "/" in path:
        return None
    for suffix in (".py", ".pyc", ".pyw"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    if ".cpython-" in path or path.endswith((".so", ".pyd")):
        return path.split(".", 1)[0]
    return path if path.isidentifier() else None


def remove_bytecode(sandbox, start: dict[str, bytes], after: dict) -> None:
    """Remove the bytecode caches the workspace did not start with, before any of its code runs in a check."""
    planted = [p for p in after if p not in start and is_cache(p)]
    if planted:
        sandbox.remove(sorted(planted, key=lambda p: -p.count("/")))


def prepare(
    sandbox,
    *,
    start: dict[str, bytes],
    after: dict,
    protected: list[str],
    allow: list[str],
    packages: list[str] | None,
    git_config: bytes | None,
) -> dict[str, str]:
    """Make the workspace (as `after` lists it, now) the clean room; returns the environment commands get."""
    kept = lambda path: bool(allow) and matches(path, allow)

    def guarded(path: str) -> bool:
        return (bool(protected) and matches(path, protected)) or (matches(path, CONFIG) and not kept(path))

    restore: dict[str, bytes] = {}
    for path, data in start.items():
        if not guarded(path):
            continue
        entry = after.get(path)
        if entry is None or entry[0] != "file" or entry[2] != hashlib.sha256(data).hexdigest():
            restore[path] = data
    remove = [
        p for p, e in after.items() if p not in start and p != "." and (guarded(p) and e[0] != "dir" or is_cache(p))
    ]
    # A top-level module the workspace did not start with (and the scenario does not declare) is set aside:
    # `python -m ...` puts the workspace first on sys.path, and the standard library and pytest try optional
    # imports (`org`, ...) that any planted package would answer.
    started = {p.split("/", 1)[0] for p in start}
    declared = set(packages or ())
    for path in after:
        name = top_level_module(path)
        if name and path not in started and name not in declared and not kept(path):
            remove.append(path)
    if git_config is not None:  # .git may no longer be a folder of the workspace: make it one again
        remove.append(".git/config")
        if after.get(".git", ["dir"])[0] != "dir":
            remove.append(".git")
        restore[".git/config"] = git_config
    if remove or restore:
        sandbox.remove(sorted(set(remove) | set(restore), key=lambda p: -p.count("/")))
    if restore:
        sandbox.put_files(restore)
    return dict(ENV)
