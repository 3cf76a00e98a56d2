"""``dagjax.random`` in Keras-style ``call`` code: the keras.io subclassing guide's VAE, imports changed."""

import jax
import numpy as np

import dagjax as keras
from dagjax import layers, ops


class Sampling(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)
    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

class Encoder(layers.Layer):
    def __init__(self, latent_dim=32, intermediate_dim=64, name="encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_mean = layers.Dense(latent_dim)
        self.dense_log_var = layers.Dense(latent_dim)
        self.sampling = Sampling()
    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean = self.dense_mean(x)
        z_log_var = self.dense_log_var(x)
        z = self.sampling((z_mean, z_log_var))
        return z_mean, z_log_var, z

class Decoder(layers.Layer):
    def __init__(self, original_dim, intermediate_dim=64, name="decoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_output = layers.Dense(original_dim, activation="sigmoid")
    def call(self, inputs):
        x = self.dense_proj(inputs)
        return self.dense_output(x)

class VariationalAutoEncoder(keras.Model):
    def __init__(self, original_dim, intermediate_dim=64, latent_dim=32, name="autoencoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.original_dim = original_dim
        self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
        self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)
    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        kl_loss = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


X = np.random.default_rng(0).random((32, 12)).astype("float32")


def test_the_guide_vae_trains_drawing_fresh_noise_each_step_and_fixed_noise_in_inference():
    vae = VariationalAutoEncoder(12, 8, 4)
    vae.compile(keras.optimizers.Adam(learning_rate=1e-3), loss=keras.losses.MeanSquaredError())
    history = vae.fit(X, X, epochs=2, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[1] < history[0]
    assert vae.encoder.uses_rng  # its Sampling draws: the model gives it the step's rng
    apply = jax.jit(vae.apply, static_argnames="training")
    draw = lambda seed: apply(vae.params, vae.state, X, training=True, rng=jax.random.key(seed))[0]
    assert not np.allclose(draw(1), draw(2)) and np.array_equal(draw(1), draw(1))
    np.testing.assert_array_equal(vae.predict(X, verbose=0), vae.predict(X, verbose=0))
    # the add_loss KL term is in the training loss: the loss with it exceeds the reconstruction alone
    reconstruction = float(np.mean((vae.predict(X, verbose=0) - X) ** 2))
    assert vae.evaluate(X, X, verbose=0) > reconstruction


def test_random_functions_outside_a_call():
    generator = keras.random.SeedGenerator(3)
    first, second = (keras.random.normal((3,), seed=generator) for _ in range(2))
    assert not np.allclose(first, second)  # a generator advances
    np.testing.assert_array_equal(keras.random.uniform((3,), seed=5), keras.random.uniform((3,), seed=5))
    ints = keras.random.randint((200,), 2, 5, seed=1)
    assert ints.dtype == np.int32 and set(np.unique(ints)) == {2, 3, 4}
    dropped = keras.random.dropout(np.ones((100,), "float32"), 0.25, seed=2)
    np.testing.assert_allclose(np.unique(np.asarray(dropped)), [0.0, 4 / 3], rtol=1e-6)
    assert sorted(np.asarray(keras.random.shuffle(np.arange(6), seed=0)).tolist()) == list(range(6))
    assert keras.random.categorical([[-1e9, 0.0]], 4, seed=0).tolist() == [[1, 1, 1, 1]]
