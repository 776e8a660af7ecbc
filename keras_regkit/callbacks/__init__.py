"""keras_regkit callbacks: overfitting detection, weight statistics and
regularization schedules for any `model.fit`."""

from keras_regkit.callbacks.lookahead import Lookahead
from keras_regkit.callbacks.overfitting_detector import OverfittingDetector
from keras_regkit.callbacks.regularization_scheduler import (
    RegularizationScheduler,
)
from keras_regkit.callbacks.weight_monitor import WeightStatsMonitor
from keras_regkit.callbacks.whitening_bias import WhiteningBiasFreezer

__all__ = [
    "Lookahead",
    "OverfittingDetector",
    "RegularizationScheduler",
    "WeightStatsMonitor",
    "WhiteningBiasFreezer",
]
