"""The Keras-style fit session: compiled loops over the data, callbacks, and the hand-off of weights."""
