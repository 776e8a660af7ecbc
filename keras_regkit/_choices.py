"""Every list of allowed values, defined once.

This module imports nothing (not even Keras), so the command line can offer
these choices in `--help` without loading TensorFlow. The modules that own
each concept import their list from here; so do the preset checks and the
CLI.
"""

# Capacity presets shipped with the library (`models/presets.py` builds them).
PRESET_NAMES = ("small", "medium", "large", "fast")
# Backbones (`models/`): `build_backbone(..., architecture=...)`.
ARCHITECTURE_NAMES = ("cnn", "mlp", "resnet", "fast")
# Augmentation policies of the tf.data pipeline (`data/augmentation.py`).
AUGMENTATION_POLICIES = (
    "none", "flip", "flip_translate", "light", "standard", "strong",
    "flip_translate2", "alternating_flip_translate2",
)
# Optimizers of the recipe (`training/recipe.py`).
OPTIMIZERS = ("adamw", "sgd", "sgd_muon")
# Learning-rate schedules (`schedules.py`).
LR_SCHEDULES = (
    "constant", "plateau", "cosine", "warmup_cosine", "warmup_linear",
    "onecycle",
)
# How weight decay is applied: by the optimizer, or as kernel L2 terms.
WEIGHT_DECAY_MODES = ("decoupled", "l2")
# Compute precisions (`training/precision.py`).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
# Test-time augmentation modes (`training/tta.py`); the CLI spells False
# as "none".
TTA_MODES = (False, True, "flip", "flip_translate")
# Where the builder runs augmentation (`training/builder.py`).
AUGMENT_ON = ("pipeline", "model")
# How the builder feeds training data (`training/builder.py`): "auto" takes
# tf.data where TensorFlow is installed and NumPy batches where it is not.
LOADERS = ("auto", "tf.data", "arrays")
# Data sets the command line trains on.
DATASETS = ("cifar10-sample", "cifar10")
# Ablations of `compare_ablations` / `regkit compare`, each a family of
# regularization switched off (`experiments/compare.py` maps each name to
# the preset fields it changes).
ABLATION_NAMES = (
    "dropout", "l2", "augmentation", "label_smoothing", "batch_norm",
    "max_norm",
)
