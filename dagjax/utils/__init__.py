"""Utilities around models: summaries and graph plots."""

from dagjax.utils._plot import model_to_dot as model_to_dot
from dagjax.utils._plot import plot_model as plot_model
from dagjax.utils._summary import summary as summary
