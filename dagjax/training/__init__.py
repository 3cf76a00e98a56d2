"""Training: losses, metrics, optimizers, the pure train step and the Keras-style fit loop."""
