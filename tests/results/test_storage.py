"""The one atomic writer and the one JSONL reader (results/storage.py)."""

import gzip
import os
import stat

import pytest

from pytest_agentbench.results import storage


def test_write_atomic_replaces_whole_fsyncs_file_and_folder_and_leaves_nothing_behind(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        storage.os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd)
    )
    path = tmp_path / "deep" / "report.json"
    storage.write_atomic(path, "one\n")
    storage.write_atomic(path, b"two\n")
    assert path.read_text() == "two\n"
    assert synced == [False, True, False, True]  # the file's data, then the folder's rename, each time
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as a plain open() makes it, not mkstemp's 0600


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        storage.write_json(path, {"a": 1})
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_jsonl_rows_reads_plain_and_gzip_and_says_what_is_wrong_with_a_line(tmp_path):
    text = '{"a": 1}\n\n[1, 2]\n{"b": \n{"c": 3}\n'
    plain, packed = tmp_path / "x.jsonl", tmp_path / "x.jsonl.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        rows = list(storage.jsonl_rows(path))
        assert [(n, row) for n, row, _ in rows] == [(1, {"a": 1}), (3, None), (4, None), (5, {"c": 3})]
        assert rows[1][2] == "line 3 is not a JSON object" and rows[2][2].startswith("line 4 is not JSON")


def test_read_records_skips_a_line_cut_short_and_a_missing_file_holds_none(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"model": "m", "suite": "s", "task": "t", "sample": 0}\n{"model": "m", "su')
    assert storage.read_records(path) == [{"model": "m", "suite": "s", "task": "t", "sample": 0}]
    assert storage.read_records(tmp_path / "none.jsonl") == []
