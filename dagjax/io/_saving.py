"""Model files and weight files: ``save_model`` / ``load_model``, ``save_weights`` / ``load_weights``.

Both are one zip file (see :mod:`dagjax.io._arrays`) holding arrays at paths
``params/<layer>/<weight>``, ``state/<layer>/<weight>`` and, for a compiled
model that has trained, ``opt_state/<path in the optimizer state>``, with the
step counter and the class of the layer owning each weight in the manifest.
A model file also holds the architecture, ``layer_to_config(model)``
(:mod:`dagjax.model._config`), and how the model was compiled
(:mod:`dagjax.training.core._compile_config`).

As in Keras 3, ``load_model`` gives the model back compiled, with its
optimizer state and step, so ``dj.load_model(path).fit(...)`` continues the
saved run exactly. A model compiled with something a file cannot hold (a raw
optax transformation, a lambda, a schedule not built in) loads uncompiled,
with a warning saying how to compile it and then restore the optimizer state
with ``load_weights``.

Weights are matched by the model's structure, as Keras 3 does: the n-th
weight in Keras's weight order goes to the n-th, which must belong to a layer
of the same class and have the same shape and dtype. Auto-generated layer
names play no part, so weights saved from one ``build_model()`` load into
another built in the same process. ``by_name=True`` matches by layer and
weight names instead.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.io._arrays import CheckpointError, Path, nested, show, write_archive
from dagjax.io._keras_files import is_keras_file, load_keras_model, save_keras_model
from dagjax.io._reading import read_archive
from dagjax.layers import _dtype_policy
from dagjax.layers._registry import class_name, custom_object_scope
from dagjax.layers._serialization import layer_from_config, layer_to_config
from dagjax.training.core import NotSerializableError, compile_arguments
from dagjax.training.fit import current_distribution, place_loaded

if TYPE_CHECKING:
    from dagjax.model import Model

_LIST_LIMIT = 8
_STEP_LIMIT = 2**31 - 1  # the fit session counts steps in an int32


# ------------------------------------------------------------------ pytrees <-> named arrays
def _weight_leaves(model, trees: dict) -> list[tuple[Path, Any]]:
    """``(("params"|"state", layer, ..., weight), leaf)`` in Keras's weight order."""
    out = []
    for collection, path in model.weight_paths():
        node = trees[collection]
        for key in path:
            node = node[key]
        out.append(((collection, *path), node))
    return out


def _owner_classes(model) -> list[str]:
    """The class of the layer owning each weight, in Keras's weight order (the file's structure)."""
    owners = []
    for _, path in model.weight_paths():
        layer = model
        for key in path[:-1]:
            layer = layer.sublayers[key]
        owners.append(class_name(layer))
    return owners


def _opt_leaves(opt_state: Any) -> list[tuple[Path, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(opt_state)
    return [(("opt_state", jax.tree_util.keystr(key_path)), leaf) for key_path, leaf in flat]


def _spec(leaf: Any) -> str:
    return f"{tuple(leaf.shape)} {np.dtype(leaf.dtype).name}"


def _describe(path: Path, leaf: Any) -> str:
    return f"{show(path)} {_spec(leaf)}"


def _listing(items: list[str]) -> str:
    more = f", and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    return ", ".join(items[:_LIST_LIMIT]) + more


def _differences(expected: list[tuple[Path, Any]], found: dict[Path, np.ndarray]) -> list[str]:
    """What differs between the arrays a model needs and those a file has, in words."""
    wanted = dict(expected)
    missing = [_describe(p, leaf) for p, leaf in expected if p not in found]
    extra = [_describe(p, a) for p, a in found.items() if p not in wanted]
    changed = [
        f"{show(p)}: file {_spec(a)}, model {_spec(wanted[p])}"
        for p, a in found.items()
        if p in wanted and _spec(a) != _spec(wanted[p])
    ]
    return (
        ([f"missing from the file: {_listing(missing)}"] if missing else [])
        + ([f"in the file but not in the model: {_listing(extra)}"] if extra else [])
        + ([f"different shape or dtype: {_listing(changed)}"] if changed else [])
    )


# ------------------------------------------------------------------ saving
def _arrays_of(model, include_optimizer: bool) -> tuple[list[tuple[Path, Any]], dict]:
    params, state = model.weights_view()
    arrays = _weight_leaves(model, {"params": params, "state": state})
    metadata: dict = {"model_name": model.name, "weight_layers": _owner_classes(model)}
    session = model.fit_session
    # A compiled model that has not trained yet has a fresh optimizer state: nothing to keep.
    if include_optimizer and session is not None and session.has_trained:
        arrays += _opt_leaves(session.opt_state_view())
        metadata["train_step"] = int(session.iterations)
    return arrays, metadata


def save_model(
    model: Model,
    filepath: str | os.PathLike,
    overwrite: bool = True,
    include_optimizer: bool = True,
    *,
    format: str = "dagjax",
) -> None:
    """Write ``model``'s architecture, params, state (and trained optimizer state) to one file.

    ``format="keras"`` writes a Keras 3 ``.keras`` file instead (without the optimizer state), see
    :func:`dagjax.io.save_keras_model`; dagjax's own format is the default whatever the extension.
    """
    if format not in ("dagjax", "keras"):
        raise ValueError(f"save_model's format is 'dagjax' or 'keras', got {format!r}.")
    _check_overwrite(filepath, overwrite)
    if format == "keras":
        save_keras_model(model, filepath)
        return
    arrays, metadata = _arrays_of(model, include_optimizer)
    # The model's own policy (not in Keras's model config) decides, with its layers', whether compile
    # scales the loss: a model made under mixed_float16 must load to train as it did.
    metadata["dtype_policy"] = _dtype_policy.serialize(model.dtype_policy)
    if model.fit_session is not None:
        metadata["compile"] = _compile_entry(model.fit_session)
    write_archive(filepath, {"kind": "model", **metadata, "config": layer_to_config(model)}, arrays)


def _compile_entry(session) -> dict:
    """``{"config": compile's arguments}``, or ``{"not_saved": why}`` when a file cannot hold them."""
    try:
        return {"config": session.compile_config()}
    except NotSerializableError as err:
        return {"not_saved": str(err)}


def save_weights(model: Model, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write ``model``'s params, state (and trained optimizer state) to one file, without the architecture."""
    _check_overwrite(filepath, overwrite)
    arrays, metadata = _arrays_of(model, include_optimizer=True)
    write_archive(filepath, {"kind": "weights", **metadata}, arrays)


def _check_overwrite(filepath: str | os.PathLike, overwrite: bool) -> None:
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"'{os.fspath(filepath)}' exists and overwrite=False.")


# ------------------------------------------------------------------ loading
def _checked_weights(
    model, filepath: str, manifest: dict, arrays: dict[Path, np.ndarray], by_name: bool = False
) -> tuple[dict, dict]:
    """The file's params and state, checked against the model's structure (or, ``by_name``, its names)."""
    abstract = {"params": model.abstract_weights(True), "state": model.abstract_weights(False)}
    expected = _weight_leaves(model, abstract)
    found = {p: a for p, a in arrays.items() if p[0] in ("params", "state")}
    owners = manifest.get("weight_layers")
    structure = _structure_differences(expected, _owner_classes(model), found, owners)
    names = _differences(expected, found)
    problems = names if by_name else structure
    if problems and not (names if not by_name else structure):
        problems.append(
            "the file's weights have the same layer and weight names: pass by_name=True to match them so"
            if not by_name
            else "the file's weights fit this model's structure under other layer names (a model built "
            "twice in one session gets new auto-names): leave by_name=False to match them by structure"
        )
    if problems:
        raise CheckpointError(
            f"The weights in '{filepath}' do not fit model '{model.name}': " + "; ".join(problems) + "."
        )
    values = [found[path] for path, _ in expected] if by_name else list(found.values())
    trees: dict[str, dict] = {"params": {}, "state": {}}
    for (path, spec), value in zip(expected, values):
        trees[path[0]][path[1:]] = _array(value, spec.dtype)
    return nested(trees["params"]), nested(trees["state"])


def _structure_differences(
    expected: list[tuple[Path, Any]], classes: list[str], found: dict[Path, np.ndarray], owners: Any
) -> list[str]:
    """What differs when the file's weights are matched to the model's by position in Keras's order.

    Each must be of the same collection (params or state), shape and dtype and,
    when the file lists them (``owners``), belong to a layer of the same class.
    """
    if len(found) != len(expected):
        return [f"the file has {len(found)} weights, the model {len(expected)}"]
    if not (isinstance(owners, list) and len(owners) == len(found)):
        owners = classes  # a file without its layers' classes: shapes and dtypes only
    changed = [
        f"weight {i}: file {_describe(p, a)} of a {owner}, model {_describe(q, spec)} of a {cls}"
        for i, ((p, a), (q, spec), owner, cls) in enumerate(zip(found.items(), expected, owners, classes))
        if p[0] != q[0] or _spec(a) != _spec(spec) or owner != cls
    ]
    return [f"different by position: {_listing(changed)}"] if changed else []


def _checked_optimizer(model, filepath: str, params: dict, arrays: dict[Path, np.ndarray]) -> Any:
    """The file's optimizer state if it fits the optimizer the model is compiled with (None if absent)."""
    found = {p: a for p, a in arrays.items() if p[0] == "opt_state"}
    if not found:
        return None
    flat, treedef = jax.tree_util.tree_flatten_with_path(jax.eval_shape(model.optimizer.init, params))
    expected = [(("opt_state", jax.tree_util.keystr(k)), leaf) for k, leaf in flat]
    problems = _differences(expected, found)
    if problems:
        raise CheckpointError(
            f"The optimizer state in '{filepath}' does not fit the optimizer model '{model.name}' is "
            "compiled with (an optax state must have the same tree structure, shapes and dtypes): "
            + "; ".join(problems)
            + ". Compile with the optimizer the file was saved with, or pass skip_optimizer=True "
            "to load only the weights."
        )
    return jax.tree_util.tree_unflatten(treedef, [_array(found[p], leaf.dtype) for p, leaf in expected])


def _array(value: np.ndarray, dtype: Any) -> Any:
    """A loaded array: on the default device, or under a distribution kept on the host for
    ``place_loaded`` to put each shard straight where it goes."""
    return jnp.asarray(value, dtype) if current_distribution() is None else np.asarray(value, dtype)


def _checked_step(filepath: str, manifest: dict) -> int:
    """The file's step counter (0 if it has none), checked to be one an int32 step count can hold."""
    step = manifest.get("train_step", 0)
    if type(step) is not int or not 0 <= step <= _STEP_LIMIT:
        raise CheckpointError(
            f"'{filepath}' has train_step {step!r:.100}; a step counter is an int from 0 to {_STEP_LIMIT}."
        )
    return step


def _optimizer_paths_renamed(model, arrays: dict[Path, np.ndarray]) -> dict[Path, np.ndarray]:
    """``arrays`` with each optimizer path's parameter part renamed to the model's, position for position.

    An optimizer state mirrors the params: a leaf's path ends with the path of
    its parameter (``...mu['dense_1']['kernel']``), which by position is the
    model's parameter of another name (``['dense_4']['kernel']``).
    """
    params, state = model.weights_view()
    expected = [path for path, _ in _weight_leaves(model, {"params": params, "state": state})]
    found = [path for path in arrays if path[0] in ("params", "state")]
    key = lambda path: "".join(f"[{name!r}]" for name in path[1:])
    renames = sorted(
        ((key(old), key(new)) for old, new in zip(found, expected) if old[0] == "params"),
        key=lambda pair: -len(pair[0]),  # a nested model's longer paths first
    )
    out = {}
    for path, value in arrays.items():
        if path[0] == "opt_state":
            old = next((pair for pair in renames if path[1].endswith(pair[0])), None)
            path = path if old is None else ("opt_state", path[1][: -len(old[0])] + old[1])
        out[path] = value
    return out


def load_weights(
    model: Model, filepath: str | os.PathLike, skip_optimizer: bool = False, by_name: bool = False
) -> None:
    """Load params and state (and, into a compiled model, optimizer state) saved from a model like this one.

    Weights are matched by the model's structure (see the module docstring);
    ``by_name=True`` matches them by their path in the parameter pytree
    (layer name, weight name) instead. Optimizer state paths follow the
    weights they mirror. Everything is checked before anything is installed:
    on error the model is unchanged.
    """
    filepath = os.fspath(filepath)
    manifest, arrays = read_archive(filepath)
    step = _checked_step(filepath, manifest)
    params, state = _checked_weights(model, filepath, manifest, arrays, by_name)
    opt_state = None
    session = model.fit_session
    if not skip_optimizer and session is not None:
        if not by_name:
            arrays = _optimizer_paths_renamed(model, arrays)
        opt_state = _checked_optimizer(model, filepath, params, arrays)
    params, state, opt_state = place_loaded(params, state, opt_state)
    model.restore_weights(params, state)
    if opt_state is not None:
        session.restore_optimizer(opt_state, step)


def load_model(
    filepath: str | os.PathLike,
    custom_objects: dict | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> Model:
    """The model saved at ``filepath``: rebuilt from its config, with its params and state, compiled as saved.

    Custom layer classes must be registered (``@dj.register_layer``) or given
    in ``custom_objects``, as must the functions of Lambda layers, custom
    activations, losses and metrics: no code is ever read from the file, so
    ``safe_mode`` (Keras's switch for files that hold code) changes nothing.
    With ``compile=True`` (the default) a model saved compiled comes back
    compiled, with its optimizer state and step (see the module docstring).

    A Keras 3 ``.keras`` file (told by its content, not its name) loads too, see
    :func:`dagjax.io.load_keras_model`: its compile config is not read yet, so it
    comes back uncompiled.
    """
    del safe_mode  # dagjax files never hold code: every load is safe
    filepath = os.fspath(filepath)
    if is_keras_file(filepath):
        return load_keras_model(filepath, custom_objects)
    manifest, arrays = read_archive(filepath)
    if manifest.get("kind") != "model" or "config" not in manifest:
        raise CheckpointError(
            f"'{filepath}' holds weights only, no architecture (it was written by save_weights): "
            "build the model in code and call model.load_weights(path)."
        )
    try:
        with custom_object_scope(custom_objects):
            model = layer_from_config(manifest["config"])
        if "dtype_policy" in manifest:  # files written before it was recorded keep the model's default
            model.dtype_policy = manifest["dtype_policy"]
    except (ValueError, TypeError) as err:  # layer_from_config reports a config it cannot rebuild as these
        raise CheckpointError(f"{err} (in the model file '{filepath}')") from err
    params, state = _checked_weights(model, filepath, manifest, arrays)
    step = _checked_step(filepath, manifest)
    if compile and "compile" in manifest:
        _compile_as_saved(model, filepath, manifest["compile"], custom_objects)
    opt_state = None if model.fit_session is None else _checked_optimizer(model, filepath, params, arrays)
    params, state, opt_state = place_loaded(params, state, opt_state)
    if opt_state is not None:
        model.fit_session.restore_optimizer(opt_state, step)
    model.restore_weights(params, state)
    return model


def _compile_as_saved(model: Model, filepath: str, entry: Any, custom_objects: dict | None) -> None:
    """Compile ``model`` as the file records; warn and leave it uncompiled if the file could not record it."""
    if isinstance(entry, dict) and "not_saved" in entry and "config" not in entry:
        warnings.warn(
            f"The model in '{filepath}' loads uncompiled: it was compiled with what a file cannot hold "
            f"({str(entry['not_saved'])[:300]}). Call model.compile(...) as before, then "
            "model.load_weights(path) to restore the optimizer state and step as well.",
            stacklevel=3,
        )
        return
    config = entry.get("config") if isinstance(entry, dict) else None
    try:
        model.compile(**compile_arguments(config, custom_objects))
    except (ValueError, TypeError) as err:
        raise CheckpointError(
            f"The model in '{filepath}' cannot be compiled as it was saved: {err} "
            "(or pass compile=False to load it uncompiled)."
        ) from err
