"""keras_regkit callbacks: overfitting detection, weight statistics and
regularization schedules for any `model.fit`, and the run-folder callbacks
that let an interrupted run resume (atomic files, an epoch backup)."""

from keras_regkit.callbacks.best_model_checkpoint import BestModelCheckpoint
from keras_regkit.callbacks.history_recorder import HistoryRecorder
from keras_regkit.callbacks.lookahead import Lookahead
from keras_regkit.callbacks.nan_guard import NaNGuard
from keras_regkit.callbacks.overfitting_detector import OverfittingDetector
from keras_regkit.callbacks.regularization_scheduler import (
    RegularizationScheduler,
)
from keras_regkit.callbacks.run_backup import RunBackup
from keras_regkit.callbacks.weight_monitor import WeightStatsMonitor
from keras_regkit.callbacks.whitening_bias import WhiteningBiasFreezer

__all__ = [
    "BestModelCheckpoint",
    "HistoryRecorder",
    "Lookahead",
    "NaNGuard",
    "OverfittingDetector",
    "RegularizationScheduler",
    "RunBackup",
    "WeightStatsMonitor",
    "WhiteningBiasFreezer",
]
