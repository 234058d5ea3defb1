"""What a command runs, however it is spelled: the installers (pip, npm, apt, ...) and the arguments that make a run an
install, the wrappers (nice, timeout, env, xargs, find -exec, sh -c) whose argument is itself a command, and the
programs from the system's folders that only read (a protected file read by `cat` is a read, not an execution)."""

from __future__ import annotations

import os
import re
from typing import Optional

#: the lexical second opinion on installs, used only for a command whose processes were not audited
INSTALL = (
    r"\bpip[0-9.]*\b[^\n]*\binstall\b",
    r"\beasy_install\b",
    r"\bconda\s+install\b",
    r"\bmamba\s+install\b",
    r"\bapt(-get)?\s+install\b",
    r"\bpoetry\s+add\b",
    r"\buv\s+(pip\s+install|add)\b",
    r"\bpipx\s+install\b",
    r"\bnpm\s+(i|install|add)\b",
    r"\bsetup\.py\s+(install|develop)\b",
    r"\bensurepip\b",
)
INSTALLED = re.compile(r"(^|/)(site-packages|dist-packages|[^/]+\.(dist|egg)-info)(/|$)")
INTERPRETER = re.compile(
    r"^(python|pypy|sh|bash|dash|zsh|ksh|mksh|busybox|perl|ruby|node|nodejs|php|lua|tclsh|"
    r"wish|awk|gawk|mawk|nawk|Rscript)[0-9.]*$"
)
#: package installers and the subcommands that install (none listed: every use installs)
INSTALLERS = {
    "pip": ("install", "download", "wheel"),
    "easy_install": (),
    "ensurepip": (),
    "conda": ("install", "create"),
    "mamba": ("install", "create"),
    "micromamba": ("install", "create"),
    "apt": ("install",),
    "apt-get": ("install",),
    "dpkg": ("-i", "--install"),
    "poetry": ("add", "install"),
    "uv": ("add", "pip"),
    "pipx": ("install", "inject", "run"),
    "npm": ("i", "install", "add", "ci"),
    "yarn": ("add", "install"),
    "pnpm": ("add", "install", "i"),
    "gem": ("install",),
    "cargo": ("install",),
    "go": ("install", "get"),
}
#: programs that read files as data, never as code: a file they read is read, not run (only the system's own
#: copies, under SYSTEM_BIN, which no agent can write)
READERS = frozenset(
    [
        "cat",
        "tac",
        "head",
        "tail",
        "less",
        "more",
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "sed",
        "wc",
        "sort",
        "uniq",
        "cut",
        "tr",
        "od",
        "hexdump",
        "xxd",
        "base64",
        "base32",
        "basenc",
        "strings",
        "file",
        "diff",
        "diff3",
        "sdiff",
        "cmp",
        "comm",
        "md5sum",
        "sha1sum",
        "sha224sum",
        "sha256sum",
        "sha384sum",
        "sha512sum",
        "b2sum",
        "cksum",
        "sum",
        "cp",
        "mv",
        "ln",
        "tee",
        "dd",
        "tar",
        "gzip",
        "gunzip",
        "zcat",
        "bzip2",
        "bunzip2",
        "bzcat",
        "xz",
        "unxz",
        "xzcat",
        "zstd",
        "unzstd",
        "zip",
        "unzip",
        "git",
        "find",
        "ls",
        "stat",
        "realpath",
        "readlink",
        "basename",
        "dirname",
        "nl",
        "fold",
        "fmt",
        "paste",
        "join",
        "column",
        "expand",
        "unexpand",
        "iconv",
        "rev",
        "split",
        "csplit",
        "patch",
        "touch",
        "chmod",
        "mkdir",
        "rm",
        "rmdir",
        "truncate",
        "du",
        "df",
        "mktemp",
        "printf",
        "echo",
        "true",
        "false",
        "test",
        "wc",
    ]
)
SYSTEM_BIN = ("/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/")


def is_reader(exe: str | None) -> bool:
    return exe is not None and exe.startswith(SYSTEM_BIN) and os.path.basename(exe) in READERS


WRAPPERS = {
    "env",
    "nice",
    "nohup",
    "timeout",
    "stdbuf",
    "time",
    "command",
    "exec",
    "setsid",
    "ionice",
    "chrt",
    "taskset",
    "sudo",
    "doas",
    "xargs",
    "watch",
    "busybox",
}
SHELLS = re.compile(r"^(sh|bash|dash|zsh|ksh|mksh)$")


def embedded_commands(argv: list[str], depth: int = 0):
    """The commands a command line runs as far as its words show: itself, what a wrapper (`env`, `nice`,
    `timeout`, `xargs`, ...) or `find -exec` runs, and each simple command of a `sh -c` script."""
    argv = [str(a) for a in argv or []]
    if not argv or depth > 4:
        return
    yield argv
    name = os.path.basename(argv[0])
    if SHELLS.match(name) and "-c" in argv[1:]:
        import shlex

        script = argv[argv.index("-c", 1) + 1] if argv.index("-c", 1) + 1 < len(argv) else ""
        for part in re.split(r"\|\||&&|[;|&\n()]|`|\$\(", script):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            while words and "=" in words[0] and not words[0].startswith("="):  # VAR=value cmd
                words = words[1:]
            yield from embedded_commands(words, depth + 1)
    elif name in WRAPPERS:
        rest = argv[1:]
        while rest and (rest[0].startswith("-") or "=" in rest[0] or re.match(r"^[0-9.]+[smhd]?$", rest[0])):
            rest = rest[1:]
        yield from embedded_commands(rest, depth + 1)
    elif name == "find" and "-exec" in argv:
        rest = argv[argv.index("-exec") + 1 :]
        end = next((i for i, a in enumerate(rest) if a in (";", "+")), len(rest))
        yield from embedded_commands([a for a in rest[:end] if a != "{}"], depth + 1)


def installer(argv: list[str], exe: str | None = None) -> Optional[str]:
    """The installer a command runs (`pip install`, `python -m pip install`, `conda create`, ...), or None."""
    argv = [str(a) for a in argv or []]
    names = [os.path.basename(exe or ""), os.path.basename(argv[0]) if argv else ""]
    args = argv[1:]
    if INTERPRETER.match(names[0]) or (argv and INTERPRETER.match(names[1])):
        if "-m" in args and args.index("-m") + 1 < len(args):  # python -m pip install ...
            at = args.index("-m")
            names.append(args[at + 1])
            args = args[at + 2 :]
        elif args and not args[0].startswith("-"):  # python /venv/bin/pip install ... (a script)
            names.append(os.path.basename(args[0]))
            args = args[1:]
    for name in names:
        base = re.sub(r"[0-9.]+$", "", name)
        if base in INSTALLERS:
            subcommands = INSTALLERS[base]
            if not subcommands or any(a in subcommands for a in args):
                return " ".join(argv)[:120]
        if name == "setup.py" and any(a in ("install", "develop") for a in args):
            return " ".join(argv)[:120]
    return None
