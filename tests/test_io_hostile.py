"""Files made to hurt the reader: bombs, lies about sizes and dtypes, malformed manifests, ambiguity.

Each file is crafted small in ``tmp_path``; a size it lies about is only declared, never written.
"""

import contextlib
import io
import json
import os
import signal
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.io import CheckpointError, read_archive, write_archive

ARRAYS = {("params", "w"): np.arange(6, dtype=np.float32).reshape(2, 3), ("state", "n"): np.int64(7)}


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.dj"
    write_archive(path, {"kind": "weights"}, ARRAYS.items())
    return path


def contents(path):
    """``(manifest, {member name: bytes})`` of a dagjax file."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return json.loads(members.pop("manifest.json")), members


def craft(path, manifest, members, compression=zipfile.ZIP_STORED):
    """Write a zip of ``manifest`` (a dict, or raw bytes) and ``members`` to ``path``."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest))
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def edited(path, edit):
    """Rewrite the file at ``path`` with ``edit(manifest)`` applied to its manifest."""
    manifest, members = contents(path)
    edit(manifest)
    return craft(path, manifest, members)


def npy(array, header=None):
    """``array`` as .npy bytes, with the header's fields replaced by ``header``'s if given."""
    out = io.BytesIO()
    array = np.asarray(array)
    descr = np.lib.format.dtype_to_descr(array.dtype)
    fields = {"descr": descr, "fortran_order": False, "shape": array.shape, **(header or {})}
    np.lib.format.write_array_header_1_0(out, fields)
    out.write(array.tobytes())
    return out.getvalue()


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging (a read that blocks on a FIFO never returns)."""

    def expire(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ 2. bombs and unbounded reads
@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_members_are_refused_before_anything_is_inflated(good, method, monkeypatch):
    manifest, members = contents(good)
    craft(good, manifest, members, compression=method)

    def inflate(*args):
        raise AssertionError("a member was inflated")

    monkeypatch.setattr(zipfile, "_get_decompressor", inflate)
    refused = rf"'{good}'.*'manifest.json' is compressed \(method {method}\)"
    with pytest.raises(CheckpointError, match=refused):
        read_archive(good)


@pytest.mark.parametrize("manifest_shape", [[10**12], [2, 3]], ids=["manifest-says-4TB", "header-says-4TB"])
def test_a_declared_size_is_checked_before_any_memory_is_given_to_it(good, manifest_shape):
    """A manifest or .npy header declaring 4 TB of float32 where 24 bytes lie: refused, never allocated."""
    manifest, members = contents(good)
    manifest["arrays"][0]["shape"] = manifest_shape
    members["arrays/0.npy"] = npy(ARRAYS["params", "w"], {"shape": (10**12,)})
    craft(good, manifest, members)
    with pytest.raises(CheckpointError, match=r"array 'params/w'.* (shape|holds)"):
        read_archive(good)


def test_a_member_declaring_more_bytes_than_the_file_holds_is_refused(good):
    data = bytearray(good.read_bytes())
    at = data.rindex(b"PK\x01\x02")  # the last central directory record
    data[at + 20 : at + 28] = (2**31).to_bytes(4, "little") * 2  # its compressed and uncompressed sizes
    good.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="declares 2147483648 bytes, more than the file holds"):
        read_archive(good)


def test_an_oversized_manifest_is_refused_unparsed(good, monkeypatch):
    manifest, members = contents(good)
    craft(good, json.dumps(manifest).encode() + b" " * 2**23, members)
    monkeypatch.setattr(json, "loads", lambda *a: pytest.fail("the manifest was parsed"))
    with pytest.raises(CheckpointError, match=r"manifest.json is 8388\d+ bytes; dagjax reads manifests of"):
        read_archive(good)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_only_regular_files_are_read(tmp_path, kind):
    path = tmp_path / "thing.dj"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # POSIX, as the SIGALRM deadline above
    else:
        path = "/dev/zero"
    with deadline(10), pytest.raises(CheckpointError, match=rf"'{path}' is not a regular file"):
        dj.load_model(path)


# ------------------------------------------------------------------ 3. no silent reinterpretation
@pytest.mark.parametrize(
    "value",
    [np.asarray([1.5, -2.0, 3e38], np.float32), np.arange(-2, 2, dtype=np.int64),
     np.asarray([1 + 2j], np.complex64), np.asarray([1.5, -2.25], jnp.bfloat16)],
    ids=lambda v: v.dtype.name,
)
def test_a_big_endian_member_loads_as_the_same_native_values(tmp_path, value):
    path = tmp_path / "be.dj"
    write_archive(path, {}, [(("a",), value)])
    manifest, members = contents(path)
    stored = value.view(f"uint{8 * value.itemsize}") if value.dtype.kind == "V" else value
    members["arrays/0.npy"] = npy(stored.astype(stored.dtype.newbyteorder(">")))
    craft(path, manifest, members)
    back = read_archive(path)[1]["a",]
    assert back.dtype == value.dtype and back.dtype.isnative
    assert back.tobytes() == value.tobytes()


@pytest.mark.parametrize(
    "stored, declared",
    [(np.asarray([1, 2], np.int32), "float32"), (np.asarray([1.0], np.float32), "int32"),
     (np.asarray([1], np.uint16), "float16"), (np.asarray([1], np.uint8), "bool"),
     (np.asarray([1], np.int16), "bfloat16"), (np.asarray([1], np.uint32), "bfloat16")],
    ids=lambda v: getattr(v, "dtype", v),
)
def test_bytes_of_another_dtype_are_refused_not_reinterpreted(tmp_path, stored, declared):
    """Only the documented case is a view: unsigned ints of the same width carry bfloat16 / float8."""
    path = craft(tmp_path / "d.dj", {"format": "dagjax", "version": 1, "arrays": [
        {"path": ["a"], "shape": list(stored.shape), "dtype": declared, "member": "arrays/0.npy"}]},
        {"arrays/0.npy": npy(stored)})
    refused = rf"array 'a' is stored as {stored.dtype}, its manifest says {declared}"
    with pytest.raises(CheckpointError, match=refused):
        read_archive(path)


# ------------------------------------------------------------------ 4. every failure is a CheckpointError
def with_entry(**fields):
    return lambda manifest: manifest["arrays"][0].update(fields)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(arrays={"a": 1}), "no list of arrays"),
    (lambda m: m.pop("arrays"), "no list of arrays"),
    (lambda m: m["arrays"].__setitem__(0, [1, 2]), "array entry 0 is malformed"),
    (lambda m: m["arrays"][1].pop("path"), "array entry 1 is malformed"),
    (with_entry(path="params/w"), "array entry 0 is malformed"),
    (with_entry(path=[]), "array entry 0 is malformed"),
    (with_entry(path=["params", 3]), "array entry 0 is malformed"),
    (with_entry(shape=3), "array entry 0 is malformed"),
    (with_entry(shape=[2, "3"]), "array entry 0 is malformed"),
    (with_entry(shape=[-2, -3]), "array entry 0 is malformed"),
    (with_entry(shape=[True, 3]), "array entry 0 is malformed"),
    (with_entry(dtype="float33"), "array entry 0 is malformed"),
    (with_entry(dtype="object"), "array entry 0 is malformed"),
    (with_entry(dtype=["float32"]), "array entry 0 is malformed"),
    (with_entry(member=None), "array entry 0 is malformed"),
    (with_entry(member="arrays/9.npy"), "member arrays/9.npy is missing"),
])
def test_a_malformed_manifest_is_a_checkpoint_error(good, edit, problem):
    edited(good, edit)
    with pytest.raises(CheckpointError, match=rf"'{good}'.*{problem}"):
        read_archive(good)


def test_deeply_nested_json_is_a_checkpoint_error(good):
    manifest, members = contents(good)
    deep = b"[" * 100_000 + b"]" * 100_000
    craft(good, b'{"format": "dagjax", "version": 1, "arrays": ' + deep + b"}", members)
    with pytest.raises(CheckpointError, match=rf"'{good}'.*manifest.json cannot be read .*recursion"):
        read_archive(good)


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3H, }",  # numpy: tokenize.TokenError
    b"{'descr': ',X4', 'fortran_order': False, 'shape': (2, 3), }",  # numpy: SyntaxError
    b"{'descr': '<f4', 'fortran_order': False,b'shape': (2, 3), }",  # numpy: TypeError
    b"{'descr': '<M8[xx]', 'fortran_order': False, 'shape': (2, 3), }",
    b"{'descr': 'O', 'fortran_order': False, 'shape': (2, 3), }",
])
def test_a_bad_npy_header_is_a_checkpoint_error(good, header):
    manifest, members = contents(good)
    blob = members["arrays/0.npy"]
    start = blob.index(b"{")
    members["arrays/0.npy"] = blob[:start] + header + blob[start + len(header) :]
    craft(good, manifest, members)
    with pytest.raises(CheckpointError, match=rf"'{good}'.*array 'params/w'"):
        read_archive(good)


def test_every_flipped_byte_is_caught_or_harmless(good):
    """One bit flipped in each byte in turn: the file reads back the same arrays or raises CheckpointError."""
    data = good.read_bytes()
    outcomes = set()
    for at in range(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 1 << (at % 8)
        good.write_bytes(bytes(flipped))
        try:
            arrays = read_archive(good)[1]
        except CheckpointError:
            outcomes.add("refused")
            continue
        assert list(arrays) == list(ARRAYS), at
        for key, value in ARRAYS.items():
            assert arrays[key].dtype == value.dtype and arrays[key].tobytes() == value.tobytes(), at
        outcomes.add("same")
    assert outcomes == {"refused", "same"}


def test_a_malformed_model_config_is_a_checkpoint_error_naming_the_file(tmp_path):
    x = dj.Input((3,))
    dj.Model(x, layers.Dense(2)(x)).save(tmp_path / "m.dj")
    edited(tmp_path / "m.dj", lambda m: m.update(config={"class_name": ["Functional"], "config": {}}))
    with pytest.raises(CheckpointError, match=rf"'{tmp_path / 'm.dj'}'"):
        dj.load_model(tmp_path / "m.dj")


# ------------------------------------------------------------------ 5. all or nothing
@pytest.mark.parametrize("step", [-1000, [3], "3", 2.5, True, None, 2**31])
def test_a_bad_step_counter_leaves_the_model_unchanged(tmp_path, step):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    inputs = dj.Input((6,))
    model = dj.Model(inputs, layers.Dense(1)(layers.Dense(4, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.dj")
    edited(tmp_path / "w.dj", lambda m: m.update(train_step=step))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    weights, opt_state = model.get_weights(), jax.tree.leaves(model.opt_state)
    iterations = int(model.fit_session.iterations)

    with pytest.raises(CheckpointError, match=r"train_step .* an int from 0 to 2147483647"):
        model.load_weights(tmp_path / "w.dj")
    for u, v in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(jax.tree.leaves(model.opt_state), opt_state, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert int(model.fit_session.iterations) == iterations


# ------------------------------------------------------------------ 6. one meaning per file
@pytest.mark.parametrize("name", ["arrays/0.npy", "manifest.json"])
def test_duplicate_zip_members_are_refused(good, name):
    manifest, members = contents(good)
    second = json.dumps(manifest).encode() if name == "manifest.json" else npy(np.zeros((2, 3), np.float32))
    with warnings.catch_warnings(), zipfile.ZipFile(good, "a") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name": the point of this file
        zf.writestr(name, second)
    with pytest.raises(CheckpointError, match=rf"'{good}' holds two zip members named '{name}'"):
        read_archive(good)


def test_duplicate_manifest_paths_are_refused(good):
    manifest, members = contents(good)
    manifest["arrays"][1] = {**manifest["arrays"][0], "member": "arrays/1.npy"}
    members["arrays/1.npy"] = npy(np.zeros((2, 3), np.float32))
    craft(good, manifest, members)
    with pytest.raises(CheckpointError, match=rf"'{good}' lists array 'params/w' twice"):
        read_archive(good)
