"""BackupAndRestore: a fit killed after an epoch resumes to an uninterrupted run's params, bitwise."""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import warnings
import zipfile

import jax
import numpy as np
import pytest

import dagjax as dj
from dagjax import callbacks, layers, optimizers
from dagjax.io import CheckpointError

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPOCHS = 5

# Run as a script, it trains with a backup and SIGKILLs itself at the end of epoch `kill_after`;
# imported, it gives the same model and fit to run in this process.
TRAINING = f"""
import os
import signal
import sys

import numpy as np

import dagjax as dj
from dagjax import callbacks, layers, optimizers


def build():
    x = dj.Input((6,), name="x")
    h = layers.Dense(16, activation="relu", name="hidden")(x)
    h = layers.Dropout(0.3, name="dropout")(h)
    model = dj.Model(x, layers.Dense(3, activation="softmax", name="probs")(h), name="net")
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"], seed=7)
    return model


def train(model, extra_callbacks, epochs={EPOCHS}, steps_per_epoch=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return model.fit(x, y, epochs=epochs, batch_size=16, shuffle=True, validation_split=0.2,
                     callbacks=extra_callbacks, verbose=0, steps_per_epoch=steps_per_epoch)


class Kill(callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    backup_dir, kill_after = sys.argv[1], int(sys.argv[2])
    train(build(), [callbacks.BackupAndRestore(backup_dir), Kill(kill_after)])
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "training.py"
    path.write_text(TRAINING)
    spec = importlib.util.spec_from_file_location("training", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def assert_same_params(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_killed_fit_resumes_to_the_params_of_an_uninterrupted_run(script, tmp_path):
    path, training = script
    backup_dir = tmp_path / "backup"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, str(path), str(backup_dir), "1"], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert sorted(os.listdir(backup_dir)) == ["backup-000002.dj"]  # two epochs finished before the kill

    resumed = training.build()
    history = training.train(resumed, [callbacks.BackupAndRestore(backup_dir)])
    assert history.epoch == [2, 3, 4] and not backup_dir.exists()  # resumed at epoch 2; backup removed

    uninterrupted = training.build()
    expected = training.train(uninterrupted, [])
    assert_same_params(resumed.params, uninterrupted.params)
    assert_same_params(resumed.opt_state, uninterrupted.opt_state)
    assert int(resumed.optimizer.iterations) == int(uninterrupted.optimizer.iterations)
    assert history.history["val_loss"] == expected.history["val_loss"][2:]


class Interrupt(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 3:
            raise RuntimeError("Interrupting!")


def test_interrupted_fit_continues_from_the_epoch_it_was_in(script, tmp_path):
    _, training = script
    backup = callbacks.BackupAndRestore(tmp_path / "backup", delete_checkpoint=False)
    model = training.build()
    with pytest.raises(RuntimeError, match="Interrupting"):
        training.train(model, [backup, Interrupt()], epochs=10)
    history = training.train(training.build(), [backup], epochs=10)
    assert history.epoch == list(range(3, 10))  # as Keras's example: only the epochs left run
    assert os.listdir(tmp_path / "backup") == ["backup-000010.dj"]  # kept: delete_checkpoint=False


def test_an_unreadable_newest_backup_falls_back_to_the_previous_one(script, tmp_path):
    _, training = script
    backup_dir = tmp_path / "backup"
    backup = callbacks.BackupAndRestore(backup_dir, double_checkpoint=True)
    with pytest.raises(RuntimeError, match="Interrupting"):
        training.train(training.build(), [backup, Interrupt()])
    assert sorted(os.listdir(backup_dir)) == ["backup-000002.dj", "backup-000003.dj"]
    newest = backup_dir / "backup-000003.dj"
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated, as by a failing disk
    with pytest.warns(UserWarning, match=r"skipped newer backups.*backup-000003.dj.*truncated"):
        history = training.train(training.build(), [backup])
    assert history.epoch == [2, 3, 4]
    (backup_dir / "backup-000001.dj").parent.mkdir()
    (backup_dir / "backup-000001.dj").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="could read none of them"):
        training.train(training.build(), [backup])


def test_a_run_resumed_mid_pass_carries_on_with_the_same_data(script, tmp_path):
    _, training = script
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    run = dict(epochs=6, steps_per_epoch=3)  # 5 batches a pass: epoch 3 starts one batch into a pass
    with pytest.raises(RuntimeError, match="Interrupting"), pytest.warns(UserWarning, match="ran out"):
        training.train(training.build(), [backup, Interrupt()], **run)
    resumed = training.build()
    with pytest.warns(UserWarning, match="ran out"):
        history = training.train(resumed, [backup], **run)
    assert history.epoch == [3, 4, 5]
    uninterrupted = training.build()
    with pytest.warns(UserWarning, match="ran out"):
        training.train(uninterrupted, [], **run)
    assert_same_params(resumed.params, uninterrupted.params)
    assert_same_params(resumed.opt_state, uninterrupted.opt_state)


def test_a_model_rebuilt_in_the_same_session_resumes_by_position(tmp_path):
    def build():  # auto-named layers: a rebuild gets dense_<n+2>, dense_<n+3>
        x = dj.Input((6,))
        model = dj.Model(x, layers.Dense(3, activation="softmax")(layers.Dense(8, activation="relu")(x)))
        model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        return model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 6)).astype("float32"), rng.integers(0, 3, 48)
    fit = dict(epochs=5, batch_size=16, shuffle=False, verbose=0)
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    first = build()
    initial = first.get_weights()  # (a rebuild draws other weights: they are seeded by name)
    with pytest.raises(RuntimeError, match="Interrupting"):
        first.fit(x, y, callbacks=[backup, Interrupt()], **fit)
    resumed = build()
    assert resumed.layers[-1].name not in os.listdir(tmp_path / "backup")[0]  # other names than the backup's
    assert resumed.fit(x, y, callbacks=[backup], **fit).epoch == [3, 4]
    uninterrupted = build()
    uninterrupted.set_weights(initial)
    uninterrupted.fit(x, y, **fit)
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # Adam's moments came back too, or these would differ


def _rezipped(path, manifest=None, compression=zipfile.ZIP_STORED, duplicate=None):
    """Rewrite the zip at ``path`` (its manifest replaced if given, a member written twice if asked)."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if manifest is not None:
        members["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we write on purpose
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
            if duplicate is not None:
                zf.writestr(duplicate, members[duplicate])


def _manifest(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped byte": _flip_middle_byte,
    "empty": lambda p: p.write_bytes(b""),
    "compressed": lambda p: _rezipped(p, compression=zipfile.ZIP_DEFLATED),
    "duplicate member": lambda p: _rezipped(p, duplicate="manifest.json"),
    "malformed manifest": lambda p: _rezipped(p, {**_manifest(p), "arrays": 3}),
    "deep json": lambda p: _rezipped(p, b"[" * 100_000 + b"]" * 100_000),
    "bad step counter": lambda p: _rezipped(p, {**_manifest(p), "train_step": -1000}),
    "dtype mismatch": lambda p: _rezipped(
        p, {**_manifest(p), "arrays": [{**a, "dtype": "int32"} for a in _manifest(p)["arrays"]]}
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_kind_of_damage_to_the_newest_backup_falls_back_to_the_older_one(script, tmp_path, damage):
    """Damage is always a CheckpointError, so the fallback catches every kind (not only truncation)."""
    _, training = script
    backup_dir = tmp_path / "backup"
    backup = callbacks.BackupAndRestore(backup_dir, double_checkpoint=True)
    with pytest.raises(RuntimeError, match="Interrupting"):
        training.train(training.build(), [backup, Interrupt()])
    DAMAGE[damage](backup_dir / "backup-000003.dj")
    with pytest.warns(UserWarning, match=r"skipped newer backups.*backup-000003.dj"):
        history = training.train(training.build(), [backup])
    assert history.epoch == [2, 3, 4]
