"""keras_regkit callbacks: overfitting detection, weight statistics and
regularization schedules for any `model.fit`."""

from keras_regkit.callbacks.overfitting_detector import OverfittingDetector
from keras_regkit.callbacks.regularization_scheduler import (
    RegularizationScheduler,
)
from keras_regkit.callbacks.weight_monitor import WeightStatsMonitor

__all__ = [
    "OverfittingDetector",
    "RegularizationScheduler",
    "WeightStatsMonitor",
]
