"""Metrics by Keras name, as pure ``init`` / ``update`` / ``result`` functions over a state pytree.

>>> from dagjax import metrics
>>> metrics.get("accuracy", y_true_shape=(None, 1), y_pred_shape=(None, 1))
BinaryAccuracy(name='accuracy')
"""

from dagjax.training.objectives._confusion_metrics import AUC as AUC
from dagjax.training.objectives._confusion_metrics import FalseNegatives as FalseNegatives
from dagjax.training.objectives._confusion_metrics import FalsePositives as FalsePositives
from dagjax.training.objectives._confusion_metrics import Precision as Precision
from dagjax.training.objectives._confusion_metrics import Recall as Recall
from dagjax.training.objectives._confusion_metrics import TrueNegatives as TrueNegatives
from dagjax.training.objectives._confusion_metrics import TruePositives as TruePositives
from dagjax.training.objectives._metric_base import Mean as Mean
from dagjax.training.objectives._metric_base import MeanMetricWrapper as MeanMetricWrapper
from dagjax.training.objectives._metric_base import Metric as Metric
from dagjax.training.objectives._metrics import Accuracy as Accuracy
from dagjax.training.objectives._metrics import BinaryAccuracy as BinaryAccuracy
from dagjax.training.objectives._metrics import BinaryCrossentropy as BinaryCrossentropy
from dagjax.training.objectives._metrics import CategoricalAccuracy as CategoricalAccuracy
from dagjax.training.objectives._metrics import CategoricalCrossentropy as CategoricalCrossentropy
from dagjax.training.objectives._metrics import CategoricalHinge as CategoricalHinge
from dagjax.training.objectives._metrics import CosineSimilarity as CosineSimilarity
from dagjax.training.objectives._metrics import Hinge as Hinge
from dagjax.training.objectives._metrics import KLDivergence as KLDivergence
from dagjax.training.objectives._metrics import LogCoshError as LogCoshError
from dagjax.training.objectives._metrics import MeanAbsoluteError as MeanAbsoluteError
from dagjax.training.objectives._metrics import MeanAbsolutePercentageError as MeanAbsolutePercentageError
from dagjax.training.objectives._metrics import MeanSquaredError as MeanSquaredError
from dagjax.training.objectives._metrics import MeanSquaredLogarithmicError as MeanSquaredLogarithmicError
from dagjax.training.objectives._metrics import Poisson as Poisson
from dagjax.training.objectives._metrics import RootMeanSquaredError as RootMeanSquaredError
from dagjax.training.objectives._metrics import SparseCategoricalAccuracy as SparseCategoricalAccuracy
from dagjax.training.objectives._metrics import SparseCategoricalCrossentropy as SparseCategoricalCrossentropy
from dagjax.training.objectives._metrics import SparseTopKCategoricalAccuracy as SparseTopKCategoricalAccuracy
from dagjax.training.objectives._metrics import SquaredHinge as SquaredHinge
from dagjax.training.objectives._metrics import TopKCategoricalAccuracy as TopKCategoricalAccuracy
from dagjax.training.objectives._metrics import accuracy as accuracy
from dagjax.training.objectives._metrics import binary_accuracy as binary_accuracy
from dagjax.training.objectives._metrics import categorical_accuracy as categorical_accuracy
from dagjax.training.objectives._metrics import get as get
from dagjax.training.objectives._metrics import sparse_categorical_accuracy as sparse_categorical_accuracy
from dagjax.training.objectives._metrics import (
    sparse_top_k_categorical_accuracy as sparse_top_k_categorical_accuracy,
)
from dagjax.training.objectives._metrics import top_k_categorical_accuracy as top_k_categorical_accuracy
