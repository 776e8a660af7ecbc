"""keras_regkit: a toolkit against overfitting for Keras 3.

Every public name is loaded on first use, so `import keras_regkit` is
cheap and imports neither Keras nor TensorFlow by itself (the `regkit`
command answers `--help` without them). Saved models still load anywhere:
the serializable classes (layers, regularizers, constraints, initializers,
losses, metrics, schedules, optimizer wrappers, callbacks) are registered
with Keras as soon as both `keras_regkit` and `keras` are imported, in
either order.
"""

import importlib
import importlib.abc
import sys
import typing
import warnings

if typing.TYPE_CHECKING:  # names for annotations only, kept out of dir()
    import types
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec

__version__ = "0.1.0"

# Public name -> the module that defines it (a submodule names itself).
_PUBLIC = {
    "plot_reliability_diagram": "keras_regkit.analysis.calibration",
    "calculate_dropout_rate": "keras_regkit.analysis.diagnosis",
    "quick_regularization_advice": "keras_regkit.analysis.diagnosis",
    "regularization_diagnosis": "keras_regkit.analysis.diagnosis",
    "plot_training_diagnostics": "keras_regkit.analysis.plots",
    "plot_validation_curves": "keras_regkit.analysis.plots",
    "classify_with_uncertainty": "keras_regkit.analysis.uncertainty",
    "mc_dropout_prediction": "keras_regkit.analysis.uncertainty",
    "mutual_information": "keras_regkit.analysis.uncertainty",
    "predictive_entropy": "keras_regkit.analysis.uncertainty",
    "Lookahead": "keras_regkit.callbacks",
    "LookaheadOptimizer": "keras_regkit.optimizers",
    "MuonSGD": "keras_regkit.optimizers",
    "OverfittingDetector": "keras_regkit.callbacks",
    "RegularizationScheduler": "keras_regkit.callbacks",
    "WeightStatsMonitor": "keras_regkit.callbacks",
    "WhiteningBiasFreezer": "keras_regkit.callbacks",
    "BestModelCheckpoint": "keras_regkit.callbacks.best_model_checkpoint",
    "HistoryRecorder": "keras_regkit.callbacks.history_recorder",
    "NaNGuard": "keras_regkit.callbacks.nan_guard",
    "RunBackup": "keras_regkit.callbacks.run_backup",
    "CenteredUnitNorm": "keras_regkit.constraints",
    "SpectralNormConstraint": "keras_regkit.constraints",
    "constraints": "keras_regkit.constraints",
    "optimizers": "keras_regkit.optimizers",
    "ArrayLoader": "keras_regkit.data.array_loader",
    "DeviceArrayLoader": "keras_regkit.data.device_loader",
    "AUGMENTATION_POLICIES": "keras_regkit.data.augmentation",
    "augmentation_model_layers": "keras_regkit.data.augmentation",
    "get_augmentation": "keras_regkit.data.augmentation",
    "let_jax_compile": "keras_regkit.data.augmentation",
    "reference_augmentation": "keras_regkit.data.augmentation",
    "seed_augmentation": "keras_regkit.data.augmentation",
    "load_cifar10": "keras_regkit.data.cifar10",
    "load_cifar10_sample": "keras_regkit.data.cifar10",
    "alternating_flip_mask": "keras_regkit.data.flips",
    "augmentation_from_image_data_generator": "keras_regkit.data.image_data_generator",
    "cutmix": "keras_regkit.data.mixing",
    "mix_arrays": "keras_regkit.data.array_loader",
    "mix_batch": "keras_regkit.data.mixing",
    "mixup": "keras_regkit.data.mixing",
    "make_dataset": "keras_regkit.data.pipeline",
    "compare_ablations": "keras_regkit.experiments.compare",
    "learning_curve": "keras_regkit.experiments.learning_curve",
    "plot_learning_curves": "keras_regkit.experiments.learning_curve",
    "progressive_regularization_search": "keras_regkit.experiments.search",
    "PartialDirac": "keras_regkit.initializers",
    "initializers": "keras_regkit.initializers",
    "ConcreteDropout": "keras_regkit.layers",
    "DropBlock2D": "keras_regkit.layers",
    "DropConnect": "keras_regkit.layers",
    "DropConnectDense": "keras_regkit.layers",
    "FastConv2D": "keras_regkit.layers",
    "FusedBatchNormalization": "keras_regkit.layers",
    "GELU": "keras_regkit.layers",
    "GaussianWeightNoise": "keras_regkit.layers",
    "MCDropout": "keras_regkit.layers",
    "MCSpatialDropout2D": "keras_regkit.layers",
    "PatchWhitening": "keras_regkit.layers",
    "ScaledBias": "keras_regkit.layers",
    "StochasticDepth": "keras_regkit.layers",
    "layers": "keras_regkit.layers",
    "patch_whitening_kernel": "keras_regkit.layers",
    "set_mc_dropout": "keras_regkit.layers",
    "LabelSmoothingCrossEntropy": "keras_regkit.losses",
    "label_smoothing_cross_entropy": "keras_regkit.losses",
    "label_smoothing_loss": "keras_regkit.losses",
    "losses": "keras_regkit.losses",
    "smooth_labels": "keras_regkit.losses",
    "ExpectedCalibrationError": "keras_regkit.metrics",
    "TopKAccuracy": "keras_regkit.metrics",
    "expected_calibration_error": "keras_regkit.metrics",
    "adapt_fast_net": "keras_regkit.models.fast_net",
    "build_fast_net": "keras_regkit.models.fast_net",
    "CapacityPreset": "keras_regkit.models.presets",
    "PRESETS": "keras_regkit.models.presets",
    "get_preset": "keras_regkit.models.presets",
    "ElasticNet": "keras_regkit.regularizers",
    "GroupLasso": "keras_regkit.regularizers",
    "L2SP": "keras_regkit.regularizers",
    "apply_l2sp": "keras_regkit.regularizers",
    "regularizers": "keras_regkit.regularizers",
    "WarmupLinearDecay": "keras_regkit.schedules",
    "ProductionModelBuilder": "keras_regkit.training.builder",
    "compile_for_preset": "keras_regkit.training.recipe",
    "make_optimizer": "keras_regkit.training.recipe",
    "trick_callbacks": "keras_regkit.training.recipe",
}

# The modules whose import registers serializable classes with Keras.
_REGISTERING = (
    "keras_regkit.layers",
    "keras_regkit.regularizers",
    "keras_regkit.constraints",
    "keras_regkit.initializers",
    "keras_regkit.losses",
    "keras_regkit.metrics",
    "keras_regkit.schedules",
    "keras_regkit.optimizers",
    "keras_regkit.callbacks",
)

__all__ = sorted(_PUBLIC)


def _register_serializables() -> None:
    for module in _REGISTERING:
        importlib.import_module(module)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Registers keras_regkit's classes right after `keras` is imported.

    It finds `keras` with the other finders, then wraps the loader so that
    the registering modules are imported once Keras's own `__init__` has
    run. It removes itself from `sys.meta_path` at its first use.
    """

    _loader: importlib.abc.Loader

    def find_spec(
        self, fullname: str, path: "Sequence[str] | None" = None,
        target: "types.ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: "ModuleSpec") -> "types.ModuleType | None":
        return self._loader.create_module(spec)

    def exec_module(self, module: "types.ModuleType") -> None:
        spec = module.__spec__
        assert spec is not None  # importlib sets it before exec_module
        spec.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        try:
            _register_serializables()
        except ImportError as error:  # Keras imports on; loading may fail later.
            warnings.warn(f"keras_regkit could not register its classes with "
                          f"Keras: {error}", stacklevel=2)


if "keras" in sys.modules:
    _register_serializables()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    import importlib.util  # noqa: E402,F401  (used by the finder)

    sys.meta_path.insert(0, _RegisterAfterKeras())


def __getattr__(name: str) -> typing.Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_regkit' has no attribute {name!r}")
    if module == f"keras_regkit.{name}":
        value = importlib.import_module(module)
    else:
        import keras  # noqa: F401  (registers first, outside any of our imports)

        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
