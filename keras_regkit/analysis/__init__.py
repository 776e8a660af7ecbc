"""Analysis: what reads a trained model or its history.

Diagnosis, Monte Carlo dropout uncertainty, calibration and plots. The
functions that train models to compare them (`compare_ablations`,
`progressive_regularization_search`, `learning_curve`) live in
`keras_regkit.experiments`; their names still import from here, on first
use.
"""

import importlib
from typing import Any

from keras_regkit.analysis.calibration import ExpectedCalibrationError
from keras_regkit.analysis.calibration import calibration_bins
from keras_regkit.analysis.calibration import expected_calibration_error
from keras_regkit.analysis.calibration import plot_reliability_diagram
from keras_regkit.analysis.diagnosis import VERDICTS
from keras_regkit.analysis.diagnosis import calculate_dropout_rate
from keras_regkit.analysis.diagnosis import quick_regularization_advice
from keras_regkit.analysis.diagnosis import regularization_diagnosis
from keras_regkit.analysis.diagnosis import weight_statistics
from keras_regkit.analysis.plots import history_dict
from keras_regkit.analysis.plots import plot_training_diagnostics
from keras_regkit.analysis.plots import plot_validation_curves
from keras_regkit.analysis.uncertainty import classify_with_uncertainty
from keras_regkit.analysis.uncertainty import mc_dropout_prediction
from keras_regkit.analysis.uncertainty import mutual_information
from keras_regkit.analysis.uncertainty import predictive_entropy

# Names that moved to `experiments` (they train models), or to the CLI
# ("module:attribute" where the name changed).
_MOVED = {
    "ABLATIONS": "keras_regkit.experiments.compare",
    "compare_ablations": "keras_regkit.experiments.compare",
    "LADDER": "keras_regkit.experiments.search",
    "progressive_regularization_search": "keras_regkit.experiments.search",
    "learning_curve": "keras_regkit.experiments.learning_curve",
    "plot_learning_curves": "keras_regkit.experiments.learning_curve",
    "add_compare_parser": "keras_regkit.cli.compare:add_parser",
    "add_diagnose_parser": "keras_regkit.cli.diagnose:add_parser",
}

__all__ = [
    "ExpectedCalibrationError",
    "VERDICTS",
    "calculate_dropout_rate",
    "calibration_bins",
    "classify_with_uncertainty",
    "expected_calibration_error",
    "history_dict",
    "mc_dropout_prediction",
    "mutual_information",
    "plot_reliability_diagram",
    "plot_training_diagnostics",
    "plot_validation_curves",
    "predictive_entropy",
    "quick_regularization_advice",
    "regularization_diagnosis",
    "weight_statistics",
]
__all__ += list(_MOVED)
__all__.sort()


def __getattr__(name: str) -> Any:
    target = _MOVED.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MOVED))
