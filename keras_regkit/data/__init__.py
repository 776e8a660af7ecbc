"""Data: CIFAR-10 loading, tf.data pipelines and augmentation policies."""

from keras_regkit.data.cifar10 import CLASS_NAMES
from keras_regkit.data.cifar10 import load_cifar10
from keras_regkit.data.cifar10 import load_cifar10_sample
from keras_regkit.data.augmentation import AUGMENTATION_POLICIES
from keras_regkit.data.augmentation import augmentation_from_image_data_generator
from keras_regkit.data.augmentation import augmentation_model_layers
from keras_regkit.data.augmentation import get_augmentation
from keras_regkit.data.augmentation import seed_augmentation
from keras_regkit.data.mixing import cutmix
from keras_regkit.data.mixing import mix_batch
from keras_regkit.data.mixing import mixup
from keras_regkit.data.pipeline import make_dataset
