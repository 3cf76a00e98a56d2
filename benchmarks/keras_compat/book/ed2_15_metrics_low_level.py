"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "Low-level usage of metrics": update_state on Python lists."""

import keras

metric = keras.metrics.SparseCategoricalAccuracy()
targets = [0, 1, 2]
predictions = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
metric.update_state(targets, predictions)
current_result = metric.result()
print(f"result: {current_result:.2f}")
assert float(current_result) == 1.0

values = [0, 1, 2, 3, 4]
mean_tracker = keras.metrics.Mean()
for value in values:
    mean_tracker.update_state(value)
print(f"Mean of values: {mean_tracker.result():.2f}")
assert float(mean_tracker.result()) == 2.0
