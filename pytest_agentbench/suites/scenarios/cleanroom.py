"""The clean room commands run in after the agent (`command:` checks): the workspace the agent left, but with

- the scenario's protected files as they started: those its `unchanged` checks and `forbidden.write` rules
  name (a test the agent edited runs as the scenario wrote it);
- configuration the agent could plant, which Python, pytest or git read from a folder on their own, restored to its
  starting content or set aside: conftest.py, pytest.ini, tox.ini, setup.cfg, pyproject.toml, sitecustomize.py,
  usercustomize.py, `.pth` files, the user site and config folders of HOME (the workspace), .git/config;
  unless the command check allows it (`allow:` globs);
- no bytecode the workspace did not start with (`__pycache__`, `.pytest_cache`), which Python or pytest would run in
  place of the source beside it;
- no module of the agent's shadowing a library: a top-level module or package the workspace did not start with
  whose name Python would otherwise import from its own environment (an empty folder `pytest/` makes
  `python -m pytest` run the agent's code);
- an environment without the user site (PYTHONNOUSERSITE) and with git's hooks and fsmonitor off.
"""
from __future__ import annotations

import hashlib
import json

from .checks import is_cache, matches

CONFIG = ("conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "sitecustomize.py",
          "usercustomize.py", "*.pth", "/.local/**", "/.config/**", "/.gitconfig", "/.pythonrc*")
ENV = {"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
       "GIT_CONFIG_COUNT": "3", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
       "GIT_CONFIG_KEY_1": "core.hooksPath", "GIT_CONFIG_VALUE_1": "/dev/null",
       "GIT_CONFIG_KEY_2": "core.fsmonitor", "GIT_CONFIG_VALUE_2": "false",
       "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
_IMPORTABLE: dict[tuple, frozenset] = {}
PROBE = ("import json, pkgutil, sys\n"
         "names = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {m.name for m in pkgutil.iter_modules()}\n"
         "print(json.dumps(sorted(names)))\n")


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


def prepare(sandbox, *, start: dict[str, bytes], after: dict, protected: list[str], allow: list[str],
            packages: list[str] | None, git_config: bytes | None) -> dict[str, str]:
    """Make the workspace the clean room; returns the environment commands get."""
    config = [g for g in CONFIG]
    kept = lambda path: bool(allow) and matches(path, allow)  # noqa: E731

    def guarded(path: str) -> bool:
        return (bool(protected) and matches(path, protected)) or (matches(path, config) and not kept(path))

    restore: dict[str, bytes] = {}
    for path, data in start.items():
        if not guarded(path):
            continue
        entry = after.get(path)
        if entry is None or entry[0] != "file" or entry[2] != hashlib.sha256(data).hexdigest():
            restore[path] = data
    if git_config is not None:
        restore[".git/config"] = git_config
    remove = [p for p, e in after.items() if p not in start and p != "." and (guarded(p) and e[0] != "dir"
                                                                            or is_cache(p))]
    started = {top_level_module(p.split("/", 1)[0]) for p in start} | {p.split("/", 1)[0] for p in start}
    libraries = importable(sandbox)
    declared = set(packages or ())
    for path in after:
        name = top_level_module(path)
        if name and name in libraries and name not in declared and name not in started and path not in started:
            remove.append(path)
    if remove or restore:
        sandbox.remove(sorted(set(remove) | set(restore), key=lambda p: -p.count("/")))
    if restore:
        sandbox.put_files(restore)
    return dict(ENV)
