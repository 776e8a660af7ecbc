"""Diagnosis, uncertainty, calibration, comparisons and plots.

`keras_regkit.analysis.tuner` (KerasTuner) is not imported here: it needs
the optional `tuner` extra.
"""

from keras_regkit.analysis.calibration import ExpectedCalibrationError
from keras_regkit.analysis.calibration import calibration_bins
from keras_regkit.analysis.calibration import expected_calibration_error
from keras_regkit.analysis.calibration import plot_reliability_diagram
from keras_regkit.analysis.compare import ABLATIONS
from keras_regkit.analysis.compare import add_compare_parser
from keras_regkit.analysis.compare import add_diagnose_parser
from keras_regkit.analysis.compare import compare_ablations
from keras_regkit.analysis.diagnosis import VERDICTS
from keras_regkit.analysis.diagnosis import calculate_dropout_rate
from keras_regkit.analysis.diagnosis import quick_regularization_advice
from keras_regkit.analysis.diagnosis import regularization_diagnosis
from keras_regkit.analysis.diagnosis import weight_statistics
from keras_regkit.analysis.plots import history_dict
from keras_regkit.analysis.plots import learning_curve
from keras_regkit.analysis.plots import plot_learning_curves
from keras_regkit.analysis.plots import plot_training_diagnostics
from keras_regkit.analysis.plots import plot_validation_curves
from keras_regkit.analysis.search import LADDER
from keras_regkit.analysis.search import progressive_regularization_search
from keras_regkit.analysis.uncertainty import classify_with_uncertainty
from keras_regkit.analysis.uncertainty import mc_dropout_prediction
from keras_regkit.analysis.uncertainty import mutual_information
from keras_regkit.analysis.uncertainty import predictive_entropy

__all__ = [
    "ABLATIONS",
    "ExpectedCalibrationError",
    "LADDER",
    "VERDICTS",
    "add_compare_parser",
    "add_diagnose_parser",
    "calculate_dropout_rate",
    "calibration_bins",
    "classify_with_uncertainty",
    "compare_ablations",
    "expected_calibration_error",
    "history_dict",
    "learning_curve",
    "mc_dropout_prediction",
    "mutual_information",
    "plot_learning_curves",
    "plot_reliability_diagram",
    "plot_training_diagnostics",
    "plot_validation_curves",
    "predictive_entropy",
    "progressive_regularization_search",
    "quick_regularization_advice",
    "regularization_diagnosis",
    "weight_statistics",
]
