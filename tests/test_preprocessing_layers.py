"""Preprocessing layers inside models: parity with Keras 3 on the same inputs (and the same adapt data).

Keras 3 runs IntegerLookup, Hashing, StringLookup and TextVectorization only
through TensorFlow (not installed here), so IntegerLookup is checked against
the examples Keras documents for it, and Hashing by its properties.
"""

import functools

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers

RNG = np.random.RandomState(0)
IMAGES = RNG.uniform(0, 255, (2, 6, 8, 3)).astype("f4")


def _ours(layer, x, training=False, rng=None):
    """``layer`` run in a one-layer dagjax model on ``x``, compiled (one compile beats many eager ops)."""
    inp = dj.Input(x.shape[1:], dtype=x.dtype)
    model = dj.Model(inp, layer(inp))
    apply = jax.jit(model.apply, static_argnames="training")
    out, _ = apply(model.params, model.state, x, training=training, rng=rng)
    return np.asarray(out), model


def _close(ours, theirs, **tolerance):
    np.testing.assert_allclose(ours, np.asarray(theirs), **({"rtol": 1e-5, "atol": 1e-4} | tolerance))


# Normalization -------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, (1, 2)])
def test_normalization_adapt_matches_keras(axis):
    data = RNG.normal(3.0, 2.0, (10, 4, 3)).astype("f4")
    ours, theirs = layers.Normalization(axis=axis), keras.layers.Normalization(axis=axis)
    ours.adapt([data[:4], data[4:]])  # batches here, one array for Keras: the running combination is exact
    theirs.adapt(data)
    out, model = _ours(ours, data)
    _close(out, theirs(data))
    for got, expected in zip(model.get_weights(), theirs.get_weights()):
        _close(got, expected)


def test_normalization_given_statistics_inverted_matches_keras():
    x = RNG.normal(size=(3, 4)).astype("f4")
    kwargs = {"mean": [1.0, 2.0, 3.0, 4.0], "variance": [1.0, 4.0, 0.25, 9.0], "invert": True}
    _close(_ours(layers.Normalization(**kwargs), x)[0], keras.layers.Normalization(**kwargs)(x))


def test_normalization_adapt_on_other_kept_sizes_is_a_clear_error():
    norm = layers.Normalization()
    norm(dj.Input((3,)))
    with pytest.raises(ValueError, match="built for input shape"):
        norm.adapt(np.zeros((4, 5), "f4"))


# Rescaling, Resizing, CenterCrop -------------------------------------------------------------------


def test_rescaling_matches_keras():
    kwargs = {"scale": [0.5, 1.0, 2.0], "offset": -1.0}
    _close(_ours(layers.Rescaling(**kwargs), IMAGES)[0], keras.layers.Rescaling(**kwargs)(IMAGES))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interpolation": "bilinear", "crop_to_aspect_ratio": True},
        {"interpolation": "nearest", "pad_to_aspect_ratio": True, "fill_value": 7.0},
    ],
)
def test_resizing_matches_keras(kwargs):
    _close(_ours(layers.Resizing(5, 5, **kwargs), IMAGES)[0], keras.layers.Resizing(5, 5, **kwargs)(IMAGES))


@pytest.mark.parametrize("size", [(4, 5), (9, 6)])  # a crop, and an image too small (resized up)
def test_center_crop_matches_keras(size):
    _close(_ours(layers.CenterCrop(*size), IMAGES)[0], keras.layers.CenterCrop(*size)(IMAGES))


# Random augmentation -------------------------------------------------------------------------------

AUGMENTATIONS = [
    (layers.RandomFlip, {}),
    (layers.RandomRotation, {"factor": 0.2}),
    (layers.RandomZoom, {"height_factor": 0.3}),
    (layers.RandomTranslation, {"height_factor": 0.2, "width_factor": 0.2}),
    (layers.RandomContrast, {"factor": 0.5}),
]


def test_augmentation_is_identity_at_inference_and_random_in_training():
    inp = dj.Input(IMAGES.shape[1:])
    outputs = [cls(**kwargs)(inp) for cls, kwargs in AUGMENTATIONS]
    model = dj.Model(inp, outputs)
    for out in model.apply(model.params, model.state, IMAGES)[0]:  # inference: nothing to compile
        np.testing.assert_array_equal(np.asarray(out), IMAGES)
    train = jax.jit(functools.partial(model.apply, training=True))
    first = train(model.params, model.state, IMAGES, rng=jax.random.key(1))[0]
    second = train(model.params, model.state, IMAGES, rng=jax.random.key(2))[0]
    for (cls, _), a, b in zip(AUGMENTATIONS, first, second):
        assert a.shape == IMAGES.shape and a.dtype == np.float32, cls
        assert not np.allclose(a, IMAGES) and not np.allclose(a, b), cls
    with pytest.raises(ValueError, match="needs an rng key"):
        model.apply(model.params, model.state, IMAGES, training=True)


def test_geometric_augmentation_matches_keras_for_a_fixed_draw():
    """Ranges of width 0 fix the draw, so Keras's training output is deterministic too."""
    arguments = [
        ("RandomRotation", ((0.1, 0.1),), {"fill_mode": "constant", "fill_value": 3.0}),
        ("RandomZoom", ((0.4, 0.4), (-0.2, -0.2)), {"interpolation": "nearest"}),
        ("RandomTranslation", ((0.25, 0.25), (-0.3, -0.3)), {"fill_mode": "wrap"}),
    ]
    inp = dj.Input(IMAGES.shape[1:])
    model = dj.Model(inp, [getattr(layers, name)(*args, **kwargs)(inp) for name, args, kwargs in arguments])
    outputs, _ = jax.jit(model.apply, static_argnames="training")(
        model.params, model.state, IMAGES, training=True, rng=jax.random.key(0)
    )
    for got, (name, args, kwargs) in zip(outputs, arguments):
        _close(
            np.asarray(got), getattr(keras.layers, name)(*args, **kwargs)(IMAGES, training=True), atol=1e-3
        )


def test_random_flip_flips_whole_images_and_contrast_stays_in_keras_range():
    images = RNG.uniform(0, 1, (32, 4, 4, 1)).astype("f4")
    flipped, _ = _ours(layers.RandomFlip(), images, training=True, rng=jax.random.key(3))
    both = images[:, ::-1, ::-1]  # Keras's default flips both axes with one draw
    same = [np.array_equal(f, i) for f, i in zip(flipped, images)]
    turned = [np.array_equal(f, b) for f, b in zip(flipped, both)]
    assert all(s != t for s, t in zip(same, turned)) and 8 < sum(turned) < 24
    contrast, _ = _ours(
        layers.RandomContrast(0.5, value_range=(-10, 10)), images, training=True, rng=jax.random.key(4)
    )
    ratio = contrast.std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3))
    assert ratio.min() >= 1.0 - 1e-5 and ratio.max() <= 1.5 + 1e-5 and ratio.max() - ratio.min() > 0.2


def test_augmentation_inside_fit_draws_from_the_step_rng():
    inp = dj.Input((6, 6, 1))
    x = layers.RandomContrast(0.3)(layers.RandomFlip("horizontal")(inp))
    model = dj.Model(inp, layers.Dense(1)(layers.Flatten()(x)))
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(
        RNG.rand(8, 6, 6, 1).astype("f4"), RNG.rand(8, 1).astype("f4"), batch_size=4, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


# Categorical layers --------------------------------------------------------------------------------


def test_category_encoding_matches_keras():
    ids = np.array([[0, 3, 3], [1, 2, 5]], "int32")
    column = ids[:, :1]
    modes = ("one_hot", "multi_hot", "count")
    inputs = [dj.Input((3,), dtype="int32"), dj.Input((1,), dtype="int32")]
    model = dj.Model(inputs, [layers.CategoryEncoding(6, output_mode=m)(i) for m in modes for i in inputs])
    outputs = model.predict([ids, column], verbose=0)
    expected = [keras.layers.CategoryEncoding(6, output_mode=m)(x) for m in modes for x in (ids, column)]
    for got, want in zip(outputs, expected):
        _close(np.asarray(got), want)


def test_discretization_given_and_adapted_match_keras():
    x = RNG.normal(size=(6, 3)).astype("f4")
    kwargs = {"bin_boundaries": [-1.0, 0.0, 0.5]}
    _close(_ours(layers.Discretization(**kwargs), x)[0], keras.layers.Discretization(**kwargs)(x))
    data = RNG.exponential(size=(300, 1)).astype("f4")
    ours, theirs = (
        layers.Discretization(num_bins=4, epsilon=0.05),
        keras.layers.Discretization(num_bins=4, epsilon=0.05),
    )
    ours.adapt([data[:100], data[100:]])
    for batch in (data[:100], data[100:]):  # Keras's adapt() is these calls after a TensorFlow type check
        theirs.update_state(batch)
    theirs.finalize_state()
    _close(np.asarray(ours.bin_boundaries), np.asarray(theirs.bin_boundaries))


def test_integer_lookup_gives_the_outputs_keras_documents():
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]], "int32")
    adapted = layers.IntegerLookup()
    adapted.adapt(data)
    assert adapted.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    forward = layers.IntegerLookup(vocabulary=vocab)
    cases = [  # (layer, input, the output Keras's docstring shows)
        (forward, data, [[1, 3, 4], [4, 0, 2]]),
        (adapted, data, [[5, 2, 1], [1, 3, 4]]),
        (
            layers.IntegerLookup(vocabulary=vocab, num_oov_indices=2),
            [[12, 1138, 42], [37, 1000, 36]],
            [[2, 4, 5], [1, 0, 3]],
        ),
        (
            layers.IntegerLookup(vocabulary=vocab, output_mode="multi_hot"),
            [[12, 1138, 42, 42], [42, 7, 36, 7]],
            [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]],
        ),
        (
            layers.IntegerLookup(vocabulary=vocab, output_mode="count"),
            [[12, 1138, 42, 42], [42, 7, 36, 7]],
            [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]],
        ),
        (
            layers.IntegerLookup(vocabulary=forward.get_vocabulary(), invert=True),
            [[1, 3, 4], [4, 0, 2]],
            [[12, 1138, 42], [42, -1, 36]],
        ),
        (layers.IntegerLookup(vocabulary=vocab, mask_token=0), [[0, 12, 7]], [[0, 2, 1]]),
    ]
    arrays = [np.asarray(x, "int32") for _, x, _ in cases]
    inputs = [dj.Input(x.shape[1:], dtype="int32") for x in arrays]
    model = dj.Model(inputs, [layer(i) for (layer, _, _), i in zip(cases, inputs)])
    outputs, _ = jax.jit(model.apply)(model.params, model.state, arrays)
    for got, (_, _, expected) in zip(outputs, cases):
        np.testing.assert_array_equal(np.asarray(got), expected)


def test_hashing_is_deterministic_balanced_and_keeps_the_mask_bin():
    ids = np.arange(-500, 3500, dtype="int32")[None]
    bins, _ = _ours(layers.Hashing(8), ids)
    assert bins.min() >= 0 and bins.max() < 8
    counts = np.bincount(bins.ravel(), minlength=8)
    assert counts.min() > 0.8 * ids.size / 8
    np.testing.assert_array_equal(_ours(layers.Hashing(8), ids)[0], bins)
    assert not np.array_equal(_ours(layers.Hashing(8, salt=133), ids)[0], bins)
    masked, _ = _ours(layers.Hashing(5, mask_value=0), np.array([[0, 1, 2, 0]], "int32"))
    assert masked[0, 0] == masked[0, 3] == 0 and masked[0, 1:3].min() >= 1
    hot, _ = _ours(layers.Hashing(4, output_mode="multi_hot"), np.array([[3, 3]], "int32"))
    assert hot.shape == (1, 4) and hot.sum() == 1.0
    with pytest.raises(layers.LayerInputError, match="integer inputs"):
        layers.Hashing(4)(dj.Input((2,)))


@pytest.mark.parametrize("cls", [layers.StringLookup, layers.TextVectorization])
def test_string_layers_refuse_with_the_dagjax_way(cls):
    with pytest.raises(NotImplementedError, match="integer ids on the host"):
        cls(vocabulary=["a", "b"])


def test_adapted_layers_survive_save_and_load(tmp_path):
    norm, lookup, bins = (
        layers.Normalization(),
        layers.IntegerLookup(output_mode="one_hot"),
        layers.Discretization(num_bins=3),
    )
    norm.adapt(RNG.normal(5.0, 3.0, (20, 2)).astype("f4"))
    lookup.adapt(np.array([4, 4, 9, 2]))
    bins.adapt(RNG.rand(50).astype("f4"))
    ids, values = dj.Input((1,), dtype="int32"), dj.Input((2,))
    out = layers.concatenate([lookup(ids), layers.Flatten()(bins(values)), norm(values)])
    model = dj.Model([ids, values], layers.Dense(3)(out))
    x = [np.array([[4], [2], [7]], "int32"), RNG.rand(3, 2).astype("f4")]
    model.save(tmp_path / "adapted.dagjax")
    loaded = dj.load_model(tmp_path / "adapted.dagjax")
    np.testing.assert_allclose(
        np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0))
    )
    np.testing.assert_allclose(np.asarray(loaded.state[norm.name]["mean"]), norm._adapted[0])
