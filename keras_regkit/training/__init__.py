"""Training: the builder, the recipe behind every preset, precision,
test-time augmentation and run folders.

`ProductionModelBuilder` needs TensorFlow (tf.data); the recipe
(`compile_for_preset`, `make_optimizer`, `trick_callbacks`) does not, so
the names are imported on first use.
"""

import importlib
from typing import Any

_LAZY = {
    "ProductionModelBuilder": "keras_regkit.training.builder",
    "AUGMENT_ON": "keras_regkit.training.builder",
    "compile_for_preset": "keras_regkit.training.recipe",
    "make_optimizer": "keras_regkit.training.recipe",
    "trick_callbacks": "keras_regkit.training.recipe",
    "PRECISIONS": "keras_regkit.training.precision",
    "measure_precisions": "keras_regkit.training.precision",
    "resolve_precision": "keras_regkit.training.precision",
    "TTA_MODES": "keras_regkit.training.tta",
    "tta_predict": "keras_regkit.training.tta",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
