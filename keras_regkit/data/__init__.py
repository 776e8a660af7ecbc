"""Data: CIFAR-10 loading, input pipelines and augmentation policies.

`make_dataset` builds a `tf.data` pipeline whatever the Keras backend;
`ArrayLoader` feeds NumPy batches with no TensorFlow at all, and
`DeviceArrayLoader` (JAX) keeps the data and its augmentation on the
accelerator. The names
that need TensorFlow (`make_dataset`, `mixup`, `cutmix`, `mix_batch`) are
imported on first use, so `import keras_regkit.data` (and `ArrayLoader`)
works where TensorFlow is not installed.
"""

import importlib
from typing import Any

from keras_regkit.data.array_loader import ArrayLoader
from keras_regkit.data.array_loader import mix_arrays
from keras_regkit.data.device_loader import DeviceArrayLoader
from keras_regkit.data.augmentation import AUGMENTATION_POLICIES
from keras_regkit.data.augmentation import augmentation_model_layers
from keras_regkit.data.augmentation import get_augmentation
from keras_regkit.data.augmentation import let_jax_compile
from keras_regkit.data.augmentation import reference_augmentation
from keras_regkit.data.augmentation import seed_augmentation
from keras_regkit.data.cifar10 import CLASS_NAMES
from keras_regkit.data.cifar10 import load_cifar10
from keras_regkit.data.cifar10 import load_cifar10_sample
from keras_regkit.data.flips import alternating_flip_mask
from keras_regkit.data.image_data_generator import (
    augmentation_from_image_data_generator,
)

# Names whose modules import TensorFlow: loaded on first use.
_LAZY = {
    "make_dataset": "keras_regkit.data.pipeline",
    "mixup": "keras_regkit.data.mixing",
    "cutmix": "keras_regkit.data.mixing",
    "mix_batch": "keras_regkit.data.mixing",
}

__all__ = [
    "AUGMENTATION_POLICIES",
    "ArrayLoader",
    "CLASS_NAMES",
    "DeviceArrayLoader",
    "alternating_flip_mask",
    "augmentation_from_image_data_generator",
    "augmentation_model_layers",
    "cutmix",
    "get_augmentation",
    "let_jax_compile",
    "load_cifar10",
    "load_cifar10_sample",
    "make_dataset",
    "mix_arrays",
    "mix_batch",
    "mixup",
    "reference_augmentation",
    "seed_augmentation",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
