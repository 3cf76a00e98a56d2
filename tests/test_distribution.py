"""dagjax.distribution: Keras's names and behaviour, sharded fit on 4 forced CPU devices, and two processes.

The sharded runs happen in subprocesses (tests/distribution_worker.py), so this process keeps its one
CPU device and its JAX config. Tolerance against one device: 1e-6 absolute on params after 2 to 4
Adam steps per epoch (measured differences are ~1e-8: only the order of the reductions changes).
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import distribution as dd
from dagjax import layers

WORKER = pathlib.Path(__file__).resolve().parent / "distribution_worker.py"
REPO = WORKER.parent.parent
TOLERANCE = 1e-6


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", **extra}
    env.pop("XLA_FLAGS", None)
    return env


def _result(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the names, against Keras's
def test_list_devices_and_layout_map_match_keras():
    assert dd.list_devices() == keras.distribution.list_devices()
    assert dd.list_devices("cpu") == keras.distribution.list_devices("cpu")
    ours = dd.LayoutMap(dd.DeviceMesh((1,), ("model",)))
    theirs = keras.distribution.LayoutMap(keras.distribution.DeviceMesh((1,), ("model",)))
    for layout_map in (ours, theirs):
        layout_map["dense.*kernel"] = (None, "model")
        layout_map["dense/bias"] = ("model",)
        layout_map[".*embeddings"] = (None, "model")
    for path in (
        "dense/kernel",
        "dense_1/kernel",
        "dense/bias",
        "dense_1/bias",
        "encoder/dense/kernel",
        "embedding/embeddings",
        "conv2d/kernel",
    ):
        got, expected = ours[path], theirs[path]
        assert (got is None) == (expected is None), path
        if got is not None:
            assert got.axes == tuple(expected.axes), path
    for layout_map in (ours, theirs):
        layout_map["dense.*"] = ("model",)
        with pytest.raises(ValueError, match="dense_1/kernel"):
            layout_map["dense_1/kernel"]


def test_distributions_have_keras_defaults_and_scope():
    ours, theirs = dd.DataParallel(), keras.distribution.DataParallel()
    assert ours.batch_dim_name == theirs.batch_dim_name
    assert ours.device_mesh.shape == tuple(theirs.device_mesh.shape)
    assert ours.device_mesh.axis_names == tuple(theirs.device_mesh.axis_names)
    assert ours.get_data_layout((8, 3)).axes == tuple(theirs.get_data_layout((8, 3)).axes)
    mesh = dd.DeviceMesh((1, 1), ("data", "model"), devices=dd.list_devices())
    layout_map = dd.LayoutMap(mesh)
    layout_map["dense.*kernel"] = (None, "model")
    model_parallel = dd.ModelParallel(layout_map=layout_map)
    assert model_parallel.batch_dim_name == "data"
    assert model_parallel.get_variable_layout("dense_2/kernel", (3, 4)).axes == (None, "model")
    assert model_parallel.get_variable_layout("dense/bias", (4,)).axes == (None,)
    assert (
        dd.ModelParallel(layout_map=layout_map, device_mesh=mesh, batch_dim_name="model").batch_dim_name
        == "model"
    )
    assert isinstance(layout_map["dense/kernel"].backend_layout, jax.sharding.NamedSharding)
    assert dd.distribution() is None
    with model_parallel.scope():
        assert dd.distribution() is model_parallel
        with ours.scope():
            assert dd.distribution() is ours
        assert dd.distribution() is model_parallel
    assert dd.distribution() is None


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="same length"):
        dd.DeviceMesh((1,), ("batch", "model"))
    with pytest.raises(ValueError, match="needs 2 devices"):
        dd.DeviceMesh((2,), ("batch",), devices=dd.list_devices()[:1])
    with pytest.raises(ValueError, match="No device named 'gpu:7'"):
        dd.DeviceMesh((1,), ("batch",), devices=["gpu:7"])
    with pytest.raises(ValueError, match=r"axes \['model'\] are not in the mesh"):
        dd.TensorLayout((None, "model"), dd.DeviceMesh((1,), ("batch",)))
    with pytest.raises(ValueError, match="layout_map=LayoutMap"):
        dd.ModelParallel(layout_map={"dense.*kernel": (None, "model")})
    with pytest.raises(ValueError, match="batch_dim_name 'rows'"):
        dd.ModelParallel(layout_map=dd.LayoutMap(dd.DeviceMesh((1,), ("batch",))), batch_dim_name="rows")
    with pytest.raises(ValueError, match="set_distribution expects"):
        dd.set_distribution("data_parallel")
    layout_map = dd.LayoutMap(dd.DeviceMesh((1,), ("model",)))
    layout_map["dense/kernel"] = ("model",)
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(2)(x))
    with pytest.raises(ValueError, match=r"'dense/kernel' has 1 axes; its shape \(3, 2\) has 2"):
        dd.weight_shardings(dd.ModelParallel(layout_map=layout_map), model.params)


def test_initialize_hands_keras_arguments_and_variables_to_jax(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    dd.initialize("10.0.0.1:1234,10.0.0.2:2345", 2, 1)
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.9:99")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "4")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "3")
    dd.initialize()
    assert calls == [
        {"coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 1},
        {"coordinator_address": "10.0.0.9:99", "num_processes": 4, "process_id": 3},
    ]


def test_only_process_zero_writes_files(tmp_path, monkeypatch):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(2)(x))
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    model.save_weights(tmp_path / "w.dj")
    assert not (tmp_path / "w.dj").exists()
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    model.save_weights(tmp_path / "w.dj")
    assert (tmp_path / "w.dj").exists()


def test_the_readme_distribution_snippet_runs_as_written():
    readme = (REPO / "README.md").read_text()
    (snippet,) = [s for s in re.findall(r"```python\n(.*?)```", readme, re.S) if "in_shardings" in s]
    x = dj.Input((4,), name="x")
    model = dj.Model(x, layers.Dense(2, name="dense")(x))
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 2)).astype("float32"))] * 2
    namespace = {"jax": jax, "model": model, "batches": batches}
    exec(snippet, namespace)
    ts = namespace["ts"]
    assert int(ts.step) == 2 and np.isfinite(float(namespace["logs"]["loss"]))
    assert ts.params["dense"]["kernel"].sharding == namespace["ts_shardings"].params["dense"]["kernel"]


# ------------------------------------------------------------------ sharded runs, in subprocesses
def test_data_and_model_parallel_on_four_devices_match_one_device(tmp_path):
    done = subprocess.run(
        [sys.executable, str(WORKER), "devices", str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = _result(done.stdout)
    populations = runs.pop("population")
    for name, run in runs.items():
        assert run["param_diff"] < TOLERANCE, (name, run)
        for key in ("loss_diff", "eval_diff", "pred_diff"):  # losses are sums over a batch: a looser bound
            assert run[key] < 10 * TOLERANCE, (name, key, run)
        assert run["kernel_devices"] == 4
        assert run["bias_spec"] == [None]
        assert run["batch_specs"] == ["['batch']"], run  # every batch the model saw was split by rows
    for run in runs.values():  # saved, then loaded into a model under the same distribution
        assert run["loaded_diff"] == 0.0
        assert run["loaded_kernel_spec"] == run["kernel_spec"]
        assert run["loaded_opt_specs"] == run["opt_kernel_specs"]
    assert runs["data"]["kernel_spec"] == [None, None] and runs["data"]["kernel_shard_shape"] == [6, 8]
    model = runs["model"]
    assert model["kernel_spec"] == [None, "model"] and model["kernel_shard_shape"] == [6, 4]
    assert model["opt_kernel_specs"] == ["[None, 'model']"]  # Adam's moments live where their kernel does
    assert "'dense/kernel' of shape (6, 8) cannot be split" in model["bad_layout"]
    # A population's members (DeepEnsemble, the population tuners) under the same distributions: member 0
    # ends as fit on one device; kernels laid out as fit's behind the member axis, every member's batch
    # split along the batch axis.
    for run in populations.values():
        assert run["param_diff"] < TOLERANCE and run["batch_specs"] == ["[None, 'batch']"], run
    assert populations["data"]["kernel_spec"] == [] and populations["data"]["kernel_shard_shape"] == [2, 6, 8]
    assert populations["model"]["kernel_spec"] == [None, None, "model"]
    assert populations["model"]["kernel_shard_shape"] == [2, 6, 4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(backup_dir, **env):
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), "process", str(i), "2", str(port), str(backup_dir)],
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]


def test_two_processes_resume_after_a_kill_and_match_one_process(tmp_path):
    first = _launch(tmp_path, DAGJAX_TEST_KILL_AT="2")
    try:
        assert first[1].wait(timeout=240) == 3, first[1].stderr.read()[-3000:]
        deadline = time.monotonic() + 60
        while not (tmp_path / "backup-000002.dj").exists() and first[0].poll() is None:
            assert time.monotonic() < deadline, "process 0 wrote no backup of epoch 2"
            time.sleep(0.1)
    finally:
        for p in first:
            p.kill()
            p.communicate()
    assert (tmp_path / "backup-000002.dj").exists()
    second = _launch(tmp_path)
    outputs = [p.communicate(timeout=240) for p in second]
    for p, (_, err) in zip(second, outputs):
        assert p.returncode == 0, err[-3000:]
    chief, other = (_result(out) for out, _ in outputs)
    assert chief["epochs"] == [2, 3]  # resumed through BackupAndRestore after the two finished epochs
    assert chief["history"] == other["history"]  # the logs (so every callback decision) are global
    assert chief["kernel_devices"] == 2
    assert chief["param_diff"] < TOLERANCE  # against one process fitting all the data for 4 epochs
    assert chief["backups"] == ["backup-000004.dj", "replicated.dj", "split.dj"]
    # predict: each process its own rows (13 and 5 of them, so they took different numbers of batches)
    assert (chief["pred_rows"], other["pred_rows"]) == (13, 5)
    assert max(chief["pred_diff"], other["pred_diff"]) < 10 * TOLERANCE
    # ModelParallel over the two processes: each holds half of every kernel, and of Adam's moments;
    # the one file process 0 saves from them holds the same arrays as the replicated model's
    assert chief["split_kernel"] == other["split_kernel"] == [False, [6, 4]]
    assert chief["split_moments"] == ["[None, 'model']"] and chief["split_file_same"]
