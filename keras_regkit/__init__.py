"""keras_regkit: a toolkit against overfitting for Keras 3.

The building blocks (layers, regularizers, constraints, losses, callbacks)
run on every Keras 3 backend. The builder, the data pipelines and the
analysis tools that need TensorFlow are imported lazily, on first use of
their names, so `import keras_regkit` under JAX or PyTorch never imports
TensorFlow.
"""

import importlib

__version__ = "0.1.0"

from keras_regkit import constraints  # noqa: E402
from keras_regkit import layers  # noqa: E402
from keras_regkit import losses  # noqa: E402
from keras_regkit import regularizers  # noqa: E402
from keras_regkit import initializers  # noqa: E402
from keras_regkit.callbacks import Lookahead  # noqa: E402
from keras_regkit.callbacks import OverfittingDetector  # noqa: E402
from keras_regkit.callbacks import RegularizationScheduler  # noqa: E402
from keras_regkit.callbacks import WeightStatsMonitor  # noqa: E402
from keras_regkit.callbacks import WhiteningBiasFreezer  # noqa: E402
from keras_regkit.constraints import CenteredUnitNorm  # noqa: E402
from keras_regkit.constraints import SpectralNormConstraint  # noqa: E402
from keras_regkit.layers import ConcreteDropout  # noqa: E402
from keras_regkit.layers import DropBlock2D  # noqa: E402
from keras_regkit.layers import DropConnect  # noqa: E402
from keras_regkit.layers import DropConnectDense  # noqa: E402
from keras_regkit.layers import GaussianWeightNoise  # noqa: E402
from keras_regkit.layers import MCDropout  # noqa: E402
from keras_regkit.layers import MCSpatialDropout2D  # noqa: E402
from keras_regkit.layers import PatchWhitening  # noqa: E402
from keras_regkit.layers import ScaledBias  # noqa: E402
from keras_regkit.layers import StochasticDepth  # noqa: E402
from keras_regkit.layers import patch_whitening_kernel  # noqa: E402
from keras_regkit.layers import set_mc_dropout  # noqa: E402
from keras_regkit.initializers import PartialDirac  # noqa: E402
from keras_regkit.losses import LabelSmoothingCrossEntropy  # noqa: E402
from keras_regkit.losses import label_smoothing_cross_entropy  # noqa: E402
from keras_regkit.losses import label_smoothing_loss  # noqa: E402
from keras_regkit.losses import smooth_labels  # noqa: E402
from keras_regkit.metrics import ExpectedCalibrationError  # noqa: E402
from keras_regkit.metrics import TopKAccuracy  # noqa: E402
from keras_regkit.metrics import expected_calibration_error  # noqa: E402
from keras_regkit.regularizers import L2SP  # noqa: E402
from keras_regkit.regularizers import ElasticNet  # noqa: E402
from keras_regkit.regularizers import GroupLasso  # noqa: E402
from keras_regkit.regularizers import apply_l2sp  # noqa: E402
from keras_regkit.schedules import WarmupLinearDecay  # noqa: E402

# Names whose modules import TensorFlow or matplotlib: loaded on first use.
_LAZY = {
    "ProductionModelBuilder": "keras_regkit.training.builder",
    "CapacityPreset": "keras_regkit.models.presets",
    "get_preset": "keras_regkit.models.presets",
    "PRESETS": "keras_regkit.models.presets",
    "load_cifar10": "keras_regkit.data.cifar10",
    "load_cifar10_sample": "keras_regkit.data.cifar10",
    "ArrayLoader": "keras_regkit.data.array_loader",
    "alternating_flip_mask": "keras_regkit.data.flips",
    "build_fast_net": "keras_regkit.models.fast_net",
    "adapt_fast_net": "keras_regkit.models.fast_net",
    "compile_for_preset": "keras_regkit.training.recipe",
    "trick_callbacks": "keras_regkit.training.recipe",
    "make_optimizer": "keras_regkit.training.recipe",
    "make_dataset": "keras_regkit.data.pipeline",
    "get_augmentation": "keras_regkit.data.augmentation",
    "augmentation_from_image_data_generator": "keras_regkit.data.image_data_generator",
    "augmentation_model_layers": "keras_regkit.data.augmentation",
    "seed_augmentation": "keras_regkit.data.augmentation",
    "AUGMENTATION_POLICIES": "keras_regkit.data.augmentation",
    "mixup": "keras_regkit.data.mixing",
    "cutmix": "keras_regkit.data.mixing",
    "mix_batch": "keras_regkit.data.mixing",
    "regularization_diagnosis": "keras_regkit.analysis.diagnosis",
    "quick_regularization_advice": "keras_regkit.analysis.diagnosis",
    "calculate_dropout_rate": "keras_regkit.analysis.diagnosis",
    "mc_dropout_prediction": "keras_regkit.analysis.uncertainty",
    "classify_with_uncertainty": "keras_regkit.analysis.uncertainty",
    "plot_reliability_diagram": "keras_regkit.analysis.calibration",
    "progressive_regularization_search": "keras_regkit.experiments.search",
    "plot_training_diagnostics": "keras_regkit.analysis.plots",
    "plot_learning_curves": "keras_regkit.experiments.learning_curve",
    "compare_ablations": "keras_regkit.experiments.compare",
    "plot_validation_curves": "keras_regkit.analysis.plots",
    "learning_curve": "keras_regkit.experiments.learning_curve",
    "predictive_entropy": "keras_regkit.analysis.uncertainty",
    "mutual_information": "keras_regkit.analysis.uncertainty",
}

__all__ = [
    "CenteredUnitNorm",
    "ConcreteDropout",
    "DropBlock2D",
    "DropConnect",
    "DropConnectDense",
    "ElasticNet",
    "GaussianWeightNoise",
    "GroupLasso",
    "L2SP",
    "LabelSmoothingCrossEntropy",
    "Lookahead",
    "MCDropout",
    "MCSpatialDropout2D",
    "OverfittingDetector",
    "PartialDirac",
    "PatchWhitening",
    "RegularizationScheduler",
    "ScaledBias",
    "SpectralNormConstraint",
    "StochasticDepth",
    "ExpectedCalibrationError",
    "TopKAccuracy",
    "WarmupLinearDecay",
    "WeightStatsMonitor",
    "WhiteningBiasFreezer",
    "apply_l2sp",
    "expected_calibration_error",
    "constraints",
    "initializers",
    "label_smoothing_cross_entropy",
    "label_smoothing_loss",
    "layers",
    "losses",
    "patch_whitening_kernel",
    "regularizers",
    "set_mc_dropout",
    "smooth_labels",
] + sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_regkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
