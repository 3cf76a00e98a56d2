"""Write your own layer: declare its weights, then compute with them.

A layer is configuration plus two pure functions. ``declare_weights`` says
which arrays the layer needs for a given input shape (nothing is allocated);
``call`` computes outputs from those arrays. dagjax derives ``init``,
``apply``, shape inference, get/set_weights and the parameter pytree.
Layers needing state (like BatchNormalization) or randomness override
``apply(params, state, x, training=False, rng=None)`` instead of ``call``.
"""

import jax
import jax.numpy as jnp
import numpy as np

import dagjax as dj
from dagjax import initializers, layers


class RBF(layers.Layer):
    """Gaussian radial-basis features: ``exp(-gamma * |x - c_k|^2)`` for learned centres."""

    min_ndim = 2  # rank checked when the layer is called on a symbolic tensor

    def __init__(self, units: int, gamma: float = 1.0, **kwargs):
        super().__init__(**kwargs)  # name, trainable, dtype: Keras's base arguments
        self.units, self.gamma = units, gamma

    def declare_weights(self, spec):
        features = spec.shape[-1]
        if features is None:
            raise self.input_error(f"needs a known feature dimension, got shape {spec.shape}")
        return [layers.WeightSpec("centres", (self.units, features), initializers.get("random_normal"))]

    def call(self, params, x):
        distances = jnp.sum((x[..., None, :] - params["centres"]) ** 2, axis=-1)
        return jnp.exp(-self.gamma * distances)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "gamma": self.gamma}


def main() -> None:
    x = dj.Input((2,))
    h = RBF(16, gamma=0.5)(x)
    y = layers.Dense(1, activation="sigmoid")(h)
    model = dj.Model(x, y)
    model.summary()

    params, state = model.init(jax.random.key(0))
    print("parameter pytree:", jax.tree_util.tree_map(jnp.shape, params))
    out, _ = jax.jit(model.apply)(params, state, np.zeros((4, 2), "float32"))
    print("outputs:", np.asarray(out).ravel())


if __name__ == "__main__":
    main()
