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
from dagjax.training.population._process_rows import RowLayout, global_plan

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


def test_a_population_plan_over_each_process_rows_names_the_global_rows():
    """Member plans drawn over one process's rows, as plans over the global data set that holds each
    process's rows at its batch positions (``_process_rows``)."""
    # two processes, one position each, 5 rows each: process 1's rows follow process 0's
    idx, mask = global_plan(
        RowLayout([[0], [1]], 5), np.array([[[3, 1], [4, 0]]]), np.array([[1, 1], [1, 0]])
    )
    assert idx.tolist() == [[[3, 1, 8, 6], [4, 0, 9, 5]]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 0, 1, 0]]
    # positions 0 and 2 in process 0, 1 and 3 in process 1, 2 rows of the global data per position:
    # a local batch's rows go to its positions in order, its local row 3 is in its second part
    idx, mask = global_plan(RowLayout([[0, 2], [1, 3]], 2), np.array([[3, 0]]), None)
    assert idx.tolist() == [[5, 7, 0, 2]] and mask is None
    # both processes hold every position (a model axis across them): the plan is the local one
    idx, _ = global_plan(RowLayout([[0, 1], [0, 1]], 3), np.array([[4, 0, 2, 5]]), None)
    assert idx.tolist() == [[4, 0, 2, 5]]


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
@pytest.fixture(scope="module")
def four_devices(tmp_path_factory) -> dict:
    """The ``devices`` worker's runs (4 forced CPU devices in one process), made once for the module."""
    scratch = tmp_path_factory.mktemp("four_devices")
    (run,) = _finish(_launch(_workers(f"devices {scratch}"), scratch), scratch, timeout=300)
    return run


def test_data_and_model_parallel_on_four_devices_match_one_device(four_devices):
    runs = dict(four_devices)
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


def _workers(*args: str) -> list[list[str]]:
    """The worker's command line for each argument list."""
    return [[sys.executable, str(WORKER), *a.split()] for a in args]


def _launch(commands: list[list[str]], scratch: pathlib.Path, **env) -> list[subprocess.Popen]:
    """The workers started side by side, their stdout and stderr in files under ``scratch``."""
    procs = []
    for i, command in enumerate(commands):
        with open(scratch / f"out-{i}.txt", "w") as out, open(scratch / f"err-{i}.txt", "w") as err:
            procs.append(subprocess.Popen(command, env=_env(**env), stdout=out, stderr=err, text=True))
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    """Kill the workers still running (one that failed leaves the others waiting in a collective)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _finish(procs: list[subprocess.Popen], scratch: pathlib.Path, timeout: float) -> list[dict]:
    """Wait for every worker to succeed (all are killed at the first failure or at ``timeout``); their
    results."""
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs):
            failed = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
            assert not failed, (scratch / f"err-{failed[0]}.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, f"workers still running after {timeout} s"
            time.sleep(0.05)
    finally:
        _stop(procs)
    for i, p in enumerate(procs):
        assert p.returncode == 0, (scratch / f"err-{i}.txt").read_text()[-3000:]
    return [_result((scratch / f"out-{i}.txt").read_text()) for i in range(len(procs))]


def test_two_processes_resume_after_a_kill_and_match_one_process(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    port = _free_port()
    commands = _workers(*(f"process {i} 2 {port} {backups}" for i in range(2)))
    first = _launch(commands, tmp_path, DAGJAX_TEST_KILL_AT="2")
    try:
        assert first[1].wait(timeout=240) == 3, (tmp_path / "err-1.txt").read_text()[-3000:]
        deadline = time.monotonic() + 60
        while not (backups / "backup-000002.dj").exists() and first[0].poll() is None:
            assert time.monotonic() < deadline, "process 0 wrote no backup of epoch 2"
            time.sleep(0.1)
    finally:
        _stop(first)
    assert (backups / "backup-000002.dj").exists()
    port = _free_port()
    commands = _workers(*(f"process {i} 2 {port} {backups}" for i in range(2)))
    chief, other = _finish(_launch(commands, tmp_path), tmp_path, timeout=240)
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
    # a DeepEnsemble (a population) fit with each process feeding its own rows of every member's batches,
    # validation data likewise: the same members and History as the ensemble fit in one process
    assert chief["ensemble_diff"] < TOLERANCE and chief["ensemble_history_diff"] < 10 * TOLERANCE
    for run in (chief, other):
        assert "same number of training rows in every process" in run["unequal_rows"]
        assert "[8, 12]" in run["unequal_rows"]


def test_model_parallel_fit_across_two_processes_matches_one_process(tmp_path, four_devices):
    """Kernels split over a 'model' axis whose two columns are the two processes (2 CPU devices each, the
    'batch' axis inside each process), against the 2x2 ModelParallel fit of one process on 4 devices
    (``four_devices``, itself within TOLERANCE of one device). Both processes hold every batch row, so each
    feeds all the data. Tolerance: TOLERANCE on params, as above (measured 0.0)."""
    port = _free_port()
    commands = _workers(*(f"model-parallel {i} 2 {port} {tmp_path}" for i in range(2)))
    chief, other = _finish(_launch(commands, tmp_path), tmp_path, timeout=120)
    reference = four_devices["model"]
    leaves = lambda run: [np.asarray(v) for v in jax.tree_util.tree_leaves(run["params"], is_leaf=_is_list)]
    assert max(np.max(np.abs(a - b)) for a, b in zip(leaves(chief), leaves(reference))) < TOLERANCE
    assert chief["params"] == other["params"]
    assert chief["history"] == other["history"]  # global logs, so every callback decides alike
    assert np.allclose(chief["history"]["loss"], reference["history"]["loss"], rtol=0, atol=10 * TOLERANCE)
    for run in (chief, other):  # each process holds a 6x4 half of the 6x8 kernel
        assert run["kernel_spec"] == reference["kernel_spec"] == [None, "model"]
        assert run["kernel_addressable"] is False and run["kernel_shard_shape"] == [6, 4]
        assert run["loaded_kernel_spec"] == [None, "model"] and run["loaded_diff"] == 0.0
        assert run["pred_diff"] < 10 * TOLERANCE  # over arrays and over a stream
        assert abs(run["evaluated"] - reference["evaluated"]) < 10 * TOLERANCE  # over a stream
        assert "A batch of 5 rows cannot be split over the 2 batch positions" in run["odd_stream_batch"]
        # a population there: members' kernels laid out as fit's behind the member axis, across the
        # processes, and member 0 ends as fit
        assert run["member_kernel"] == [[None, None, "model"], False] and run["member_diff"] < TOLERANCE
        assert run["ensemble_member_diff"] < TOLERANCE  # a DeepEnsemble's host copy of those members
    # DataParallel with the processes' devices interleaved on the batch axis: each process's rows go to
    # its two positions, and the fit is one device's over the global batches
    assert chief["interleaved_kernel_devices"] == other["interleaved_kernel_devices"] == 4
    assert chief["interleaved_diff"] < TOLERANCE
    # the last epoch's checkpoint, written during fit by process 0 alone, loads here on one device
    x = dj.Input((6,), name="x")
    hidden = layers.Dense(8, activation="relu", name="dense")(x)
    model = dj.Model(x, layers.Dense(4, activation="softmax", name="dense_1")(hidden))
    model.load_weights(tmp_path / "mp-2.dj")
    assert jax.tree_util.tree_all(
        jax.tree_util.tree_map(lambda a, b: np.array_equal(a, np.asarray(b)), model.params, chief["params"])
    )


def _is_list(value) -> bool:
    return isinstance(value, list)
