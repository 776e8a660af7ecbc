"""Data: CIFAR-10 loading, tf.data pipelines and augmentation policies.

The only part of keras_regkit (with the builder and the CLI) that imports
TensorFlow: `make_dataset` builds a `tf.data` pipeline whatever the Keras
backend.
"""

from keras_regkit.data.augmentation import AUGMENTATION_POLICIES
from keras_regkit.data.augmentation import (  # noqa: F401
    augmentation_from_image_data_generator,
)
from keras_regkit.data.augmentation import augmentation_model_layers
from keras_regkit.data.augmentation import get_augmentation
from keras_regkit.data.augmentation import seed_augmentation
from keras_regkit.data.cifar10 import CLASS_NAMES
from keras_regkit.data.cifar10 import load_cifar10
from keras_regkit.data.cifar10 import load_cifar10_sample
from keras_regkit.data.mixing import cutmix
from keras_regkit.data.mixing import mix_batch
from keras_regkit.data.mixing import mixup
from keras_regkit.data.pipeline import make_dataset

__all__ = [
    "AUGMENTATION_POLICIES",
    "CLASS_NAMES",
    "augmentation_from_image_data_generator",
    "augmentation_model_layers",
    "cutmix",
    "get_augmentation",
    "load_cifar10",
    "load_cifar10_sample",
    "make_dataset",
    "mix_batch",
    "mixup",
    "seed_augmentation",
]
