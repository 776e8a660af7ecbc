"""Experiments: functions that train models to compare them.

`compare_ablations` (a preset against itself with one regularizer off),
`progressive_regularization_search` (a ladder of regularization strengths)
and `learning_curve` (accuracy against training-set size).
`keras_regkit.experiments.tuner` (KerasTuner) is not imported here: it
needs the optional `tuner` extra.
"""

from keras_regkit.experiments.compare import ABLATIONS
from keras_regkit.experiments.compare import compare_ablations
from keras_regkit.experiments.learning_curve import learning_curve
from keras_regkit.experiments.learning_curve import plot_learning_curves
from keras_regkit.experiments.search import LADDER
from keras_regkit.experiments.search import progressive_regularization_search

__all__ = [
    "ABLATIONS",
    "LADDER",
    "compare_ablations",
    "learning_curve",
    "plot_learning_curves",
    "progressive_regularization_search",
]
