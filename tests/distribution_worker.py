"""Runs in a subprocess of tests/test_distribution.py, never collected by pytest itself.

``devices``: on 4 forced CPU devices, fit/evaluate/predict under DataParallel and a 2x2 ModelParallel
against one device, with the shardings inside and outside the step, and a population under both.
``process <id> <n> <port> <dir>``:
one of ``n`` processes joined by ``dagjax.distribution.initialize``, a data-parallel fit with
BackupAndRestore (``DAGJAX_TEST_KILL_AT`` kills process 1 at that epoch's start), then predict on each
process's own rows, a DeepEnsemble fit on each process's own rows, and weights split across the
processes loaded and saved.
``model-parallel <id> <n> <port> <dir>``: one of ``n`` processes with 2 forced CPU devices each, fitting
as ``devices`` mode's ModelParallel does, on the same 2x2 mesh shape, its 'model' axis across the
processes (so each process holds every batch row and feeds the whole data), with a checkpoint per epoch,
and a population fit there.
Each mode prints one JSON line of results for the test to check.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np

EPOCHS = 4


def build(probe=None):
    """A small MLP (with a Lambda that reports its input's sharding inside the step, if ``probe``)."""
    import dagjax as dj
    from dagjax import layers

    dj.clear_session()
    x = dj.Input((6,), name="x")
    h = x if probe is None else layers.Lambda(probe, name="probe")(x)
    h = layers.Dense(8, activation="relu")(h)
    out = layers.Dense(4, activation="softmax")(h)
    model = dj.Model(x, out)
    return model


def compiled(model, steps_per_execution="auto"):
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    return model


def data(n):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 4, n)


def max_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def spec(array):
    return [list(a) if isinstance(a, tuple) else a for a in array.sharding.spec]


def devices_mode():
    from dagjax import distribution as dd

    x, y = data(46)  # batch 10: the last of 5 batches is padded, and 10 rows split 3/3/2/2 over 4 devices
    reference = compiled(build())
    ref_history = reference.fit(x, y, batch_size=10, epochs=2, verbose=0).history
    ref_eval = reference.evaluate(x, y, batch_size=10, verbose=0)
    ref_pred = reference.predict(x, batch_size=10, verbose=0)
    mesh = dd.DeviceMesh((2, 2), ("batch", "model"))
    layout_map = dd.LayoutMap(mesh)
    layout_map["dense.*kernel"] = (None, "model")
    out = {}
    for name, dist, steps in [
        ("data", dd.DataParallel(), "auto"),
        ("model", dd.ModelParallel(layout_map=layout_map), 1),
    ]:
        seen = []

        def probe(t, seen=seen):
            jax.debug.inspect_array_sharding(t, callback=lambda sharding: seen.append(spec_of(sharding)))
            return t

        model = compiled(build(probe), steps)
        with dist.scope():
            history = model.fit(x, y, batch_size=10, epochs=2, verbose=0).history
            evaluated = model.evaluate(x, y, batch_size=10, verbose=0)
            batches = ((x[i : i + 10], y[i : i + 10]) for i in range(0, len(x), 10))
            streamed = model.evaluate(batches, verbose=0)  # host batches: placed per block, not once
            predicted = model.predict(x, batch_size=10, verbose=0)
        params = model.params
        mu = model.fit_session.opt_state_view()
        path = os.path.join(sys.argv[2], f"{name}.dj")
        model.save_weights(path)
        loaded = compiled(build(probe), steps)
        with dist.scope():
            loaded.load_weights(path)  # each array straight into its sharding
        loaded_kernel = loaded.params["dense"]["kernel"]
        loaded_mu = loaded.fit_session.opt_state_view()
        mu_specs = sorted({str(spec(leaf)) for leaf in jax.tree_util.tree_leaves(mu) if np.ndim(leaf) == 2})
        out[name] = {
            "params": as_lists(jax.device_get(params)),
            "history": history,
            "evaluated": evaluated,
            "param_diff": max_diff(params, reference.params),
            "loss_diff": max(abs(a - b) for a, b in zip(history["loss"], ref_history["loss"])),
            "eval_diff": max(abs(evaluated - ref_eval), abs(streamed - ref_eval)),
            "pred_diff": float(np.max(np.abs(predicted - ref_pred))),
            "kernel_spec": spec(params["dense"]["kernel"]),
            "bias_spec": spec(params["dense"]["bias"]),
            "kernel_devices": len(params["dense"]["kernel"].sharding.device_set),
            "kernel_shard_shape": list(params["dense"]["kernel"].addressable_shards[0].data.shape),
            "opt_kernel_specs": mu_specs,
            "batch_specs": sorted({str(s) for s in seen}),
            "loaded_diff": max_diff((loaded.params, loaded_mu), (params, mu)),
            "loaded_kernel_spec": spec(loaded_kernel),
            "loaded_opt_specs": sorted(
                {str(spec(v)) for v in jax.tree_util.tree_leaves(loaded_mu) if np.ndim(v) == 2}
            ),
        }
    out["population"] = population_runs(
        x, y, [("data", dd.DataParallel()), ("model", dd.ModelParallel(layout_map=layout_map))], reference
    )
    bad = dd.LayoutMap(dd.DeviceMesh((1, 4), ("batch", "model")))
    bad["dense/kernel"] = ("model", None)  # 6 rows over 4 devices
    try:
        with dd.ModelParallel(layout_map=bad).scope():
            compiled(build()).fit(x, y, batch_size=10, epochs=1, verbose=0)
        out["model"]["bad_layout"] = "no error"
    except ValueError as err:
        out["model"]["bad_layout"] = str(err)
    print(json.dumps(out))


def population_runs(x, y, distributions, reference):
    """Two members of a population (as DeepEnsemble and the tuners train them) under each distribution:
    member 0 (seed 0) against ``reference``, the same training by ``fit`` on one device; where the
    arrays and batches live."""
    from dagjax.population import Population, fit_population, member

    out = {}
    for name, dist in distributions:
        seen = []

        def probe(t, seen=seen):
            jax.debug.inspect_array_sharding(t, callback=lambda sharding: seen.append(spec_of(sharding)))
            return t

        population = Population(build(probe), "sparse_categorical_crossentropy", "adam", size=2)
        with dist.scope():
            ps = fit_population(population, x, y, batch_size=10, epochs=2)[0]
        kernel = ps.train.params["dense"]["kernel"]
        out[name] = {
            "param_diff": max_diff(member(ps.train, 0).params, reference.params),
            "kernel_spec": spec(kernel),
            "kernel_shard_shape": list(kernel.addressable_shards[0].data.shape),
            "batch_specs": sorted({str(s) for s in seen}),
        }
    return out


def process_mode(process_id, processes, port, backup_dir):
    """Each process fits its own rows of every global batch; process 0 checks against one device."""
    from dagjax import callbacks
    from dagjax import distribution as dd
    from dagjax.population import Population, fit_population

    dd.initialize(f"127.0.0.1:{port}", processes, process_id)
    x, y = data(48)
    batch, share = 8, 8 // processes

    def rows_of(count):  # this process's share of each batch of the first ``count`` rows
        starts = range(0, count, batch)
        return np.concatenate(
            [np.arange(r + process_id * share, r + (process_id + 1) * share) for r in starts]
        )

    mine = rows_of(48)
    kill_at = int(os.environ.get("DAGJAX_TEST_KILL_AT", "-1"))

    class Kill(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at and process_id == 1:
                os._exit(3)  # as a crash would: no clean-up, no atexit

    model = compiled(build())
    dd.set_distribution(dd.DataParallel())
    history = model.fit(
        x[mine],
        y[mine],
        batch_size=batch,
        epochs=EPOCHS,
        verbose=0,
        shuffle=False,
        callbacks=[callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False), Kill()],
    )
    rows = x[: 13 if process_id == 0 else 5] + process_id  # unequal shares: 4, 4, 4, 1 rows against 4, 1
    predicted = model.predict(rows, batch_size=batch, verbose=0)  # each process gets its own rows' outputs
    val = rows_of(16)
    ensemble_fit = lambda x, y, val_x, val_y: ensemble_run(x, y, val_x, val_y, batch)
    ensemble = ensemble_fit(x[mine], y[mine], x[val], y[val])  # each process its own rows of every batch
    try:  # every member draws one shuffle for all the processes: their row counts must agree
        population = Population(build(), "sparse_categorical_crossentropy", "adam", size=2)
        fit_population(population, x[: 8 + 4 * process_id], y[: 8 + 4 * process_id], batch_size=batch)
        unequal = "no error"
    except ValueError as err:
        unequal = str(err)
    dd.set_distribution(None)
    out = {
        "history": history.history,
        "epochs": history.epoch,
        "kernel_devices": len(model.params["dense"]["kernel"].sharding.device_set),
        "pred_rows": len(predicted),
        "pred_diff": max_diff(predicted, model.apply(*jax.device_get((model.params, model.state)), rows)[0]),
        "unequal_rows": unequal,
    }
    out.update(split_saving(model, processes, process_id, backup_dir))
    if process_id == 0:
        reference = compiled(build())
        reference.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0, shuffle=False)
        out["param_diff"] = max_diff(jax.device_get(model.params), reference.params)
        alone = ensemble_fit(x, y, x[:16], y[:16])  # the same ensemble in one process, on all the rows
        out["ensemble_diff"] = max_diff(ensemble[0], alone[0])
        out["ensemble_history_diff"] = max_diff(ensemble[1], alone[1])
        out["backups"] = sorted(os.listdir(backup_dir))
    print(json.dumps(out), flush=True)


def data_parallel_interleaved(grid, process_id, x, y):
    """DataParallel over all 4 devices with the processes' devices interleaved along the batch axis
    (process 0 holds positions 0 and 2, process 1 positions 1 and 3), each process feeding its own rows:
    against one device fitting the global batches those rows make, in order."""
    from dagjax import distribution as dd

    mesh = dd.DeviceMesh((grid.size,), ("batch",), devices=grid.reshape(-1))
    # a global batch of 8 is positions 0..3 in turn, 2 rows each: each process's batch of 4 holds the
    # rows of its two positions, so rows 0-1 and 4-5 of every 8 are process 0's, 2-3 and 6-7 process 1's
    mine = np.concatenate([r + 2 * process_id + np.array([0, 1, 4, 5]) for r in range(0, 24, 8)])
    model = compiled(build())
    with dd.DataParallel(device_mesh=mesh).scope():
        model.fit(x[mine], y[mine], batch_size=8, epochs=1, verbose=0, shuffle=False)
    out = {"interleaved_kernel_devices": len(model.params["dense"]["kernel"].sharding.device_set)}
    if process_id == 0:
        alone = compiled(build())
        alone.fit(x[:24], y[:24], batch_size=8, epochs=1, verbose=0, shuffle=False)
        out["interleaved_diff"] = max_diff(jax.device_get(model.params), alone.params)
    return out


def ensemble_run(x, y, val_x, val_y, batch):
    """A DeepEnsemble of two fit for 2 epochs in order: its members' params and its history."""
    from dagjax.ensemble import DeepEnsemble

    ensemble = DeepEnsemble(build(), 2)
    ensemble.compile("adam", "sparse_categorical_crossentropy")
    history = ensemble.fit(x, y, batch, 2, verbose=0, shuffle=False, validation_data=(val_x, val_y))
    return ensemble.params, history.history


def split_saving(model, processes, process_id, scratch):
    """Weights split across the processes (ModelParallel over them): loaded straight into their
    shardings, saved to one file by process 0 with the same arrays as the replicated model's file."""
    from jax.experimental import multihost_utils

    from dagjax import distribution as dd
    from dagjax.io._reading import read_archive

    replicated, split = os.path.join(scratch, "replicated.dj"), os.path.join(scratch, "split.dj")
    model.save_weights(replicated)
    multihost_utils.sync_global_devices("replicated weights written")  # the others read process 0's file
    layout_map = dd.LayoutMap(dd.DeviceMesh((1, processes), ("batch", "model")))
    layout_map["dense.*kernel"] = (None, "model")
    loaded = compiled(build())
    with dd.ModelParallel(layout_map=layout_map).scope():
        loaded.load_weights(replicated)
        kernel = loaded.params["dense"]["kernel"]
        loaded.save_weights(split)  # every process joins the gathers; process 0 writes
    moments = jax.tree_util.tree_leaves(loaded.fit_session.opt_state_view())
    out = {
        "split_kernel": [kernel.is_fully_addressable, list(kernel.addressable_shards[0].data.shape)],
        "split_moments": sorted({str(spec(v)) for v in moments if np.ndim(v) == 2}),
    }
    if process_id == 0:
        (before, a), (after, b) = read_archive(replicated), read_archive(split)
        out["split_file_same"] = before["arrays"] == after["arrays"] and all(
            np.array_equal(a[k], b[k]) for k in a
        )
    return out


def spec_of(sharding):
    return [list(a) if isinstance(a, tuple) else a for a in sharding.spec]


def as_lists(tree):
    return jax.tree_util.tree_map(lambda v: np.asarray(v).tolist(), tree)


def model_parallel_mode(process_id, processes, port, scratch):
    """ModelParallel with the 'model' axis across the processes (the 2x2 mesh of ``devices`` mode, each
    process one column): fit as there, with a checkpoint each epoch; the checkpoint loaded back into the
    same layout; evaluate and predict over arrays and over streams (whose batches set their own size)."""
    from jax.experimental import multihost_utils

    from dagjax import callbacks
    from dagjax import distribution as dd
    from dagjax.ensemble import DeepEnsemble
    from dagjax.population import Population, fit_population, member

    jax.config.update("jax_num_cpu_devices", 2)
    dd.initialize(f"127.0.0.1:{port}", processes, process_id)
    by_process = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    grid = np.asarray(by_process, dtype=object).reshape(processes, -1).T  # rows: batch, columns: process
    layout_map = dd.LayoutMap(dd.DeviceMesh(grid.shape, ("batch", "model"), devices=grid))
    layout_map["dense.*kernel"] = (None, "model")
    x, y = data(46)  # as in devices mode; each process holds both batch positions, so it feeds every row
    model, loaded = compiled(build()), compiled(build())
    checkpoint = callbacks.ModelCheckpoint(os.path.join(scratch, "mp-{epoch}.dj"), save_weights_only=True)
    with dd.ModelParallel(layout_map=layout_map).scope():
        history = model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[checkpoint])
        multihost_utils.sync_global_devices("checkpoint written")  # by process 0, the others read it
        loaded.load_weights(os.path.join(scratch, "mp-2.dj"))
        rows = x[:10]
        predicted = model.predict(rows, batch_size=4, verbose=0)
        # a stream's batches are this process's own as they come: batch_size (3 rows cannot split over
        # the two batch positions) is ignored there, as Keras ignores it
        streamed = model.predict((rows[i : i + 4] for i in range(0, 10, 4)), batch_size=3, verbose=0)
        stream_evaluated = model.evaluate(
            ((x[i : i + 10], y[i : i + 10]) for i in range(0, len(x), 10)), batch_size=3, verbose=0
        )
        try:  # a stream's batch of 5 rows cannot split over the 2 batch positions each process holds
            model.evaluate(iter([(x[:5], y[:5])]), verbose=0)
            odd = "no error"
        except ValueError as err:
            odd = str(err)
        # a population there: every process feeds its rows of each member's batches (here all of them)
        population = Population(build(), "sparse_categorical_crossentropy", "adam", size=2)
        members = fit_population(population, x, y, batch_size=10, epochs=2)[0].train.params
        ensemble = DeepEnsemble(build(), 2)
        ensemble.params = members  # its host copy, as DeepEnsemble.fit keeps one: the split kernels gathered
    out = data_parallel_interleaved(grid, process_id, x, y)
    kernel, loaded_kernel = model.params["dense"]["kernel"], loaded.params["dense"]["kernel"]
    params = multihost_utils.process_allgather(model.params, tiled=True)
    expected = model.apply(*jax.device_get((params, {})), rows)[0]
    out |= {
        "history": history.history,
        "params": as_lists(params),
        "kernel_spec": spec(kernel),
        "kernel_addressable": kernel.is_fully_addressable,
        "kernel_shard_shape": list(kernel.addressable_shards[0].data.shape),
        "loaded_kernel_spec": spec(loaded_kernel),
        "loaded_diff": max_diff(multihost_utils.process_allgather(loaded.params, tiled=True), params),
        "pred_diff": max(max_diff(predicted, expected), max_diff(streamed, expected)),
        "evaluated": stream_evaluated,
        "odd_stream_batch": odd,
        "member_kernel": [spec(members["dense"]["kernel"]), members["dense"]["kernel"].is_fully_addressable],
        "member_diff": max_diff(member(multihost_utils.process_allgather(members, tiled=True), 0), params),
        "ensemble_member_diff": max_diff(ensemble.members[0].params, params),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "devices":  # devices <scratch dir>
        jax.config.update("jax_num_cpu_devices", 4)
        devices_mode()
    elif sys.argv[1] == "model-parallel":  # model-parallel <id> <n> <port> <scratch dir>
        model_parallel_mode(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        process_mode(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
