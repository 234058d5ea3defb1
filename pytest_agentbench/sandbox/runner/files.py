"""Files, confined to the workspace: `fs` mode (read, write, list, grep, scan, manifest, tar in, wipe)."""

import io
import json
import os
import stat

from .frames import read_frame, write_all


class Refused(Exception):
    """A path or request the workspace rules refuse: the message is shown to the agent."""


def confined(root, path, must_exist=True):
    """The real path of `path` inside `root`; relative paths only, no `..`, no link that leads out."""
    if not isinstance(path, str) or "\0" in path:
        raise Refused("a path must be a string")
    if path.startswith("/") or path.startswith("~"):
        raise Refused("absolute paths are not allowed: use a path relative to the workspace")
    if ".." in path.replace("\\", "/").split("/"):
        raise Refused("'..' is not allowed in a path")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, path or "."))
    if full != real_root and not full.startswith(real_root + os.sep):
        raise Refused("%s leads outside the workspace" % path)
    if must_exist and not os.path.lexists(full):
        raise Refused("no such file or directory: %s" % path)
    return full


def _rel(root, full):
    return os.path.relpath(full, os.path.realpath(root))


def _fs_write(root, args, data):
    full = confined(root, args["path"], must_exist=False)
    parent = os.path.dirname(full)
    made = []
    probe = parent
    while not os.path.lexists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(parent) != parent:
        raise Refused("%s leads outside the workspace" % args["path"])
    if os.path.isdir(full):
        raise Refused("%s is a directory" % args["path"])
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, args.get("mode", 0o644))
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    return {"written": len(data), "path": _rel(root, full), "made": [_rel(root, d) for d in reversed(made)]}


def _open_owned(path, flags):
    """Open a file of the workspace; one the agent made unreadable gets its owner's permissions back first (every
    file in the workspace is the run's uid's, so the harness, that uid too, is never locked out)."""
    try:
        return os.open(path, flags)
    except PermissionError:
        st = os.lstat(path)
        os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IRUSR | (stat.S_IXUSR if stat.S_ISDIR(st.st_mode) else 0))
        return os.open(path, flags)


def _fs_read(root, args, out_fd):
    full = confined(root, args["path"])
    if os.path.isdir(full):
        raise Refused("%s is a directory" % args["path"])
    if not os.path.isfile(full):
        raise Refused("%s is not a regular file" % args["path"])
    cap = int(args.get("max_bytes", 1 << 20))
    fd = _open_owned(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, cap) if cap else b""
    finally:
        os.close(fd)
    write_all(out_fd, data)
    return {"size": size, "truncated": size > len(data), "path": _rel(root, full)}


def _fs_scan(root, args, out_fd):
    """Which of `needles` (hex) each file of `paths` holds, reading every file whole (in chunks that overlap by the
    longest needle); a path that cannot be read (a FIFO, a vanished file) is a problem, never a clean file."""
    needles = [bytes.fromhex(n) for n in args["needles"]]
    overlap = max((len(n) for n in needles), default=1) - 1
    hits, problems = {}, {}
    inflate = bool(args.get("inflate"))
    for rel in args["paths"]:
        try:
            full = confined(root, rel)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                problems[rel] = "not a regular file"
                continue
            fd = _open_owned(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, Refused) as exc:
            problems[rel] = "cannot be read (%s)" % (getattr(exc, "strerror", None) or exc)
            continue
        found, tail = set(), b""
        unpack = _object_reader(rel) if inflate else None
        try:
            while True:
                raw = os.read(fd, 1 << 20)
                chunk = unpack(raw) if unpack is not None else raw
                if not raw and not chunk:
                    break
                window = tail + chunk
                for i, needle in enumerate(needles):
                    if i not in found and needle in window:
                        found.add(i)
                tail = window[-overlap:] if overlap else b""
        except OSError as exc:
            problems[rel] = "cannot be read (%s)" % exc.strerror
        finally:
            os.close(fd)
        if found:
            hits[rel] = sorted(found)
    write_all(out_fd, json.dumps({"hits": hits, "problems": problems}).encode())
    return {}


def _object_reader(rel):
    """For a loose git object (.git/objects/xx/yyyy, zlib-compressed), a function that inflates it chunk by chunk;
    None for any other file (packs and the like are read as they are)."""
    import re
    import zlib

    if not re.match(r"^\.git/objects/[0-9a-f]{2}/[0-9a-f]{38,}$", rel):
        return None
    inflater = zlib.decompressobj()

    def unpack(chunk):
        try:
            return inflater.decompress(chunk) if chunk else inflater.flush()
        except zlib.error:
            return chunk

    return unpack


def _fs_stat(root, args, out_fd):
    """{path: inode} of the workspace paths that exist (links not followed)."""
    found = {}
    for rel in args["paths"]:
        try:
            found[rel] = os.lstat(os.path.join(os.path.realpath(root), rel)).st_ino
        except OSError:
            continue
    write_all(out_fd, json.dumps(found).encode())
    return {}


def _fs_remove(root, args):
    """Remove workspace paths (a file, a link itself, a whole tree); the parent is resolved inside the workspace."""
    for rel in args["paths"]:
        head, name = os.path.split(rel.rstrip("/"))
        if not name or name in (".", ".."):
            continue
        try:
            full = os.path.join(confined(root, head or "."), name)
        except Refused:
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            remove_contents(full)
            os.rmdir(full)
        elif os.path.lexists(full):
            os.unlink(full)
    return {}


def _fs_list(root, args, out_fd):
    full = confined(root, args.get("path") or ".")
    if not os.path.isdir(full):
        raise Refused("%s is not a directory" % args.get("path"))
    entries = []
    for entry in sorted(os.scandir(full), key=lambda e: e.name):
        kind = "dir" if entry.is_dir(follow_symlinks=False) else "link" if entry.is_symlink() else "file"
        size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
        entries.append({"name": entry.name, "type": kind, "size": size})
        if len(entries) >= int(args.get("max_entries", 1000)):
            break
    write_all(out_fd, json.dumps(entries).encode())
    return {"count": len(entries)}


def _fs_grep(root, args, out_fd):
    import re

    try:
        pattern = re.compile(args["pattern"])
    except re.error as exc:
        raise Refused("invalid regular expression: %s" % exc)
    start = confined(root, args.get("path") or ".")
    real_root = os.path.realpath(root)
    limit = int(args.get("max_matches", 200))
    matches = 0
    shown = []
    files = [start] if os.path.isfile(start) else []
    if not files:
        for top, dirs, names in os.walk(start):
            dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__", ".pytest_cache"))
            files.extend(os.path.join(top, n) for n in sorted(names))
    lines = []
    for path in files:
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                blob = f.read(4 << 20)
        except OSError:
            continue
        if b"\0" in blob[:8192]:
            continue
        rel = os.path.relpath(path, real_root)
        for n, text in enumerate(blob.decode("utf-8", "replace").split("\n"), 1):
            if pattern.search(text):
                if not shown or shown[-1] != rel:
                    shown.append(rel)
                lines.append("%s:%d:%s" % (rel, n, text[:500]))
                matches += 1
                if matches >= limit:
                    break
        if matches >= limit:
            break
    write_all(out_fd, ("\n".join(lines) + ("\n" if lines else "")).encode())
    return {"matches": matches, "truncated": matches >= limit, "shown": shown}


def _fs_put_tar(root, data):
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4; the archive comes from the host anyway
            archive.extractall(os.path.realpath(root), filter="data")
        else:
            archive.extractall(os.path.realpath(root))
    return {}


def _clear_files(limit):
    """Unlink the non-directories of the current directory; return its subdirectories' names."""
    subdirs = []
    with os.scandir(".") as it:
        entries = list(it)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.name)
            continue
        try:
            os.unlink(entry.name)
        except PermissionError:
            os.chmod(".", stat.S_IRWXU)
            os.unlink(entry.name)
        limit[0] -= 1
    if limit[0] < 0:
        raise OSError("too many entries to remove")
    return subdirs


def _enter(name):
    try:
        os.chdir(name)
    except PermissionError:
        os.chmod(name, stat.S_IRWXU)
        os.chdir(name)
    if not os.access(".", os.R_OK | os.W_OK | os.X_OK):
        os.chmod(".", stat.S_IRWXU)


def _fs_manifest(root, args, out_fd):
    """Every entry of the workspace but .git: {path: [type, size, sha256 or link target]}, walked without
    recursion; deeper than `max_depth` or more than `max_entries` is reported, not walked."""
    import hashlib

    real_root = os.path.realpath(root)
    entries, stack, incomplete = {}, [("", 0)], []
    limit, max_depth = int(args.get("max_entries", 200000)), int(args.get("max_depth", 64))
    while stack:
        rel, depth = stack.pop()
        here = os.path.join(real_root, rel) if rel else real_root
        try:
            try:
                with os.scandir(here) as it:
                    children = sorted(it, key=lambda e: e.name)
            except PermissionError:  # made unreadable by the agent: the owner (this uid) restores it
                os.chmod(here, stat.S_IMODE(os.lstat(here).st_mode) | stat.S_IRWXU)
                with os.scandir(here) as it:
                    children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            entries[rel or "."] = ["unreadable", 0, exc.strerror or ""]
            continue
        for entry in children:
            path = rel + "/" + entry.name if rel else entry.name
            if path == ".git" and not args.get("git"):
                continue
            if len(entries) >= limit:
                incomplete.append("more than %d entries" % limit)
                stack = []
                break
            ino = entry.inode()
            if entry.is_symlink():
                entries[path] = ["link", 0, os.readlink(entry.path), ino]
            elif entry.is_dir(follow_symlinks=False):
                entries[path] = ["dir", 0, "", ino]
                if depth + 1 < max_depth:
                    stack.append((path, depth + 1))
                else:
                    incomplete.append("deeper than %d levels at %s" % (max_depth, path))
            elif entry.is_file(follow_symlinks=False):
                digest = hashlib.sha256()
                try:
                    fd = _open_owned(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                    with os.fdopen(fd, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            digest.update(chunk)
                    entries[path] = ["file", entry.stat(follow_symlinks=False).st_size, digest.hexdigest(), ino]
                except OSError as exc:
                    entries[path] = ["unreadable", 0, exc.strerror or "", ino]
            else:
                entries[path] = ["special", 0, "", ino]
    write_all(out_fd, json.dumps(entries).encode())
    return {"entries": len(entries), "incomplete": incomplete[:5]}


def remove_contents(top, limit=50_000_000):
    """Empty `top` without recursion: a 3,000-level tree must hit neither Python's recursion limit nor PATH_MAX.
    Walks down with chdir (every process that could race it is dead by then), unlinks files, and removes each
    directory on the way back up; each directory is listed once."""
    home = os.open(".", os.O_RDONLY)
    budget = [limit]
    try:
        os.chdir(top)
        if not os.access(".", os.R_OK | os.W_OK | os.X_OK):
            os.chmod(".", stat.S_IRWXU)
        pending = _clear_files(budget)
        stack = []
        while True:
            if pending:
                name = pending.pop()
                _enter(name)
                stack.append((name, pending))
                pending = _clear_files(budget)
                continue
            if not stack:
                return
            name, pending = stack.pop()
            os.chdir("..")
            os.rmdir(name)
    finally:
        os.fchdir(home)
        os.close(home)


def fs(in_fd=0, out_fd=1):
    """One file operation; the result is a JSON line on stderr (data, if any, on stdout)."""
    header = json.loads(read_frame(in_fd))
    data = read_frame(in_fd) if header.get("has_data") else b""
    root = os.getcwd()
    op, args = header["op"], header.get("args") or {}
    try:
        if op == "write":
            result = _fs_write(root, args, data)
        elif op == "read":
            result = _fs_read(root, args, out_fd)
        elif op == "list":
            result = _fs_list(root, args, out_fd)
        elif op == "grep":
            result = _fs_grep(root, args, out_fd)
        elif op == "put_tar":
            result = _fs_put_tar(root, data)
        elif op == "manifest":
            result = _fs_manifest(root, args, out_fd)
        elif op == "scan":
            result = _fs_scan(root, args, out_fd)
        elif op == "remove":
            result = _fs_remove(root, args)
        elif op == "stat":
            result = _fs_stat(root, args, out_fd)
        elif op == "wipe":  # the workspace, and the scratch folders the host names (never a default: unconfined,
            remove_contents(root)  # /tmp would be the host's own)
            for scratch in args.get("scratch") or ():
                try:
                    remove_contents(scratch)
                except OSError:
                    pass
            result = {}
        else:
            raise Refused("unknown file operation %r" % op)
        status = {"ok": True, **result}
    except Refused as exc:
        status = {"ok": False, "error": str(exc)}
    except OSError as exc:
        status = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc.strerror or exc)}
    write_all(2, (json.dumps(status) + "\n").encode())
    return 0
