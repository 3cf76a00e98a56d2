"""DLwP 3rd ed., ch. 7 "Low-level usage of metrics": the stateless form (metric.variables in, new ones out)."""

import keras
from keras import ops

metric = keras.metrics.SparseCategoricalAccuracy()
targets = ops.array([0, 1, 2])
predictions = ops.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])

metric_variables = metric.variables
metric_variables = metric.stateless_update_state(
    metric_variables, targets, predictions
)
current_result = metric.stateless_result(metric_variables)
print(f"result: {current_result:.2f}")
assert float(current_result) == 1.0

metric_variables = metric.stateless_reset_state()
assert float(metric.stateless_result(metric_variables)) == 0.0
