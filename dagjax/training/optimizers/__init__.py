"""Keras's optimizers as optax transformations, and the learning rate kept in their state."""
