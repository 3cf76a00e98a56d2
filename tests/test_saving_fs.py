"""Saving respects the filesystem as a plain write would, and stays atomic (the project's item 7)."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

import dagjax as dj
from dagjax import layers


def small(seed=0):
    x = dj.Input((3,), name="x")
    model = dj.Model(x, layers.Dense(2, name="out")(x))
    model.set_weights([np.full((3, 2), seed, "float32"), np.zeros(2, "float32")])
    return model


def test_a_write_protected_file_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "model.dj"
    small(1).save(path)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(PermissionError, match=f"Cannot save to '{path}': the file is write-protected"):
        small(2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.dj"]


def test_saving_to_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    real, link = tmp_path / "real.dj", tmp_path / "link.dj"
    small(1).save(real)
    link.symlink_to(real)
    small(2).save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(dj.load_model(real).get_weights()[0], np.full((3, 2), 2.0))


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "model.dj"
    small(1).save(path)
    path.chmod(0o640)
    small(2).save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_temporaries_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    script = "import os; print(os.getpid())"
    gone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # that process has exited
    killed = tmp_path / f".model.dj.{dead_pid}.0123456789ab.tmp"
    legacy = tmp_path / ".model.dj.ba9876543210.tmp"  # named by an older version, without a pid
    running = tmp_path / f".model.dj.{os.getpid()}.aaaaaaaaaaaa.tmp"  # this process: a save in progress
    other = tmp_path / f".other.dj.{dead_pid}.0123456789ab.tmp"  # another file's: not this save's business
    for path in (killed, legacy, running, other):
        path.write_bytes(b"half a save")
    os.utime(legacy, (0, 0))
    small().save(tmp_path / "model.dj")
    assert sorted(os.listdir(tmp_path)) == sorted(["model.dj", running.name, other.name])


@pytest.mark.parametrize("target", ["", "somewhere/"])
def test_a_path_that_names_no_file_is_a_clear_error_and_creates_nothing(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="give a file path"):
        small().save(target)
    assert os.listdir(tmp_path) == []


def test_a_full_disk_names_the_file_and_says_a_save_needs_room_for_a_second_copy(tmp_path, monkeypatch):
    path = tmp_path / "model.dj"
    small(1).save(path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(OSError, match=rf"Cannot save '{path}': No space left on device\. .*second copy"):
        small(2).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.dj"]
