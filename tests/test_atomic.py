"""keras_regkit._atomic: the one atomic writer every file goes through."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from keras_regkit import _atomic


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_bytes_text_and_json_round_trip(tmp_path):
    _atomic.atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01abc")
    _atomic.atomic_write_text(tmp_path / "b.txt", "caf\u00e9\n")
    _atomic.atomic_write_json(tmp_path / "c.json",
                              {"b": np.float32(0.5), "a": np.arange(3),
                               "n": float("inf")})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01abc"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "caf\u00e9\n"
    assert json.loads((tmp_path / "c.json").read_text()) == {
        "a": [0, 1, 2], "b": 0.5, "n": "inf"}
    assert _names(tmp_path) == ["a.bin", "b.txt", "c.json"]


def test_a_write_replaces_the_previous_file_and_creates_folders(tmp_path):
    path = tmp_path / "sub" / "deeper" / "file.txt"
    _atomic.atomic_write_text(path, "one")
    _atomic.atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert _names(path.parent) == ["file.txt"]


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        _atomic.atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_a_writer_that_fails_halfway_leaves_the_old_file_and_no_temp(
        tmp_path):
    path = tmp_path / "results.json"
    _atomic.atomic_write_text(path, "old")

    def half_then_crash(f):
        f.write(b"new but only ha")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        _atomic.atomic_write(path, half_then_crash)
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["results.json"]


def test_a_failing_block_of_atomic_path_removes_its_temp(tmp_path):
    path = tmp_path / "model.keras"
    with pytest.raises(ValueError, match="save failed"):
        with _atomic.atomic_path(path, suffix=".keras") as tmp:
            assert os.path.exists(tmp)
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise ValueError("save failed")
    assert _names(tmp_path) == []


def test_a_failing_rename_leaves_the_old_file_and_no_temp(tmp_path,
                                                          monkeypatch):
    path = tmp_path / "config.yaml"
    _atomic.atomic_write_text(path, "old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        _atomic.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["config.yaml"]


def test_the_file_and_then_its_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else
                      "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    _atomic.atomic_write_text(tmp_path / "f.txt", "x")
    if os.name == "posix":
        assert synced == ["file", "dir"]
    else:
        assert synced == ["file"]


def test_the_temp_file_is_hidden_beside_the_target_until_the_rename(
        tmp_path):
    path = tmp_path / "best_model.keras"
    with _atomic.atomic_path(path, suffix=".keras") as tmp:
        name = os.path.basename(tmp)
        assert os.path.dirname(tmp) == str(tmp_path)
        assert name.startswith(".best_model.keras.")
        assert name.endswith(".tmp.keras")
        assert not path.exists()
        with open(tmp, "wb") as f:
            f.write(b"model")
    assert path.read_bytes() == b"model"
    assert _names(tmp_path) == ["best_model.keras"]


def test_atomic_path_serves_writers_that_need_a_file_name(tmp_path):
    path = tmp_path / "cache.npz"
    with _atomic.atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, x=np.arange(4))
    with np.load(path) as data:
        np.testing.assert_array_equal(data["x"], np.arange(4))
    assert _names(tmp_path) == ["cache.npz"]


def test_remove_temp_files_removes_only_temps_of_the_named_files(tmp_path):
    for name in (".history.csv.k3j2.tmp", ".best_model.keras.ab.tmp.keras",
                 ".best_model.x81.keras", ".other.csv.zz.tmp",
                 "history.csv", ".keep"):
        (tmp_path / name).write_text("x")
    removed = _atomic.remove_temp_files(
        tmp_path, ["history.csv", "best_model.keras"])
    assert sorted(p.name for p in removed) == [
        ".best_model.keras.ab.tmp.keras", ".best_model.x81.keras",
        ".history.csv.k3j2.tmp"]
    assert _names(tmp_path) == [".keep", ".other.csv.zz.tmp", "history.csv"]
    assert _atomic.remove_temp_files(tmp_path / "missing", ["a"]) == []


def test_a_killed_write_leaves_a_temp_that_remove_temp_files_finds(
        tmp_path):
    # The process dies inside the writer: no cleanup code runs.
    path = tmp_path / "history.csv"
    path.write_text("old")
    script = (
        "import os, sys\n"
        "from keras_regkit import _atomic\n"
        "def die(f):\n"
        "    f.write(b'half'); f.flush(); os._exit(9)\n"
        "_atomic.atomic_write(sys.argv[1], die)\n")
    code = subprocess.run([sys.executable, "-c", script, str(path)]).returncode
    assert code == 9
    assert path.read_text() == "old"
    leftovers = [n for n in _names(tmp_path) if n != "history.csv"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".history.csv.")
    assert len(_atomic.remove_temp_files(tmp_path, ["history.csv"])) == 1
    assert _names(tmp_path) == ["history.csv"]


def test_importing_it_loads_neither_keras_nor_tensorflow():
    script = ("import sys, keras_regkit._atomic\n"
              "print(sorted(m for m in ('keras', 'tensorflow')"
              " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
