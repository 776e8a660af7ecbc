"""Alternating horizontal flips: each image flipped on every other epoch.

Random flips leave it to chance whether an image is seen both ways within
two epochs. Alternating flips (airbench) make it certain: on epoch 0 a
seeded random half of the images is flipped, and on every later epoch each
image is flipped exactly when it was not flipped on the epoch before. Over
any two consecutive epochs every image is seen once as it is and once
mirrored.

`alternating_flip_mask` and `flip_images` are NumPy (no TensorFlow);
`tf_alternating_flip` is the tf.data form that `make_dataset` uses, and
imports TensorFlow only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from keras_regkit._validation import check_int
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid

if TYPE_CHECKING:
    import tensorflow as tf


def alternating_flip_mask(num_images: int, epoch: int,
                          seed: int | None = None) -> npt.NDArray[np.bool_]:
    """Which images to flip on `epoch` under alternating flips.

    The mask is `base XOR (epoch is odd)`, where `base` flips each image with
    probability 1/2, drawn from `np.random.default_rng(seed)`.

    Args:
        num_images: number of training images, >= 1.
        epoch: epoch index, >= 0 (0 is the first epoch).
        seed: seed of the epoch-0 mask. Give one: with `None` every call
            draws a new base mask and the epochs no longer alternate.
            Defaults to `None`.

    Returns:
        A bool NumPy array of shape `(num_images,)`, `True` for "flip".

    Example:

    ```python
    flip = alternating_flip_mask(len(x_train), epoch, seed=0)
    x_epoch = flip_images(x_train, flip)
    ```

    References:
        - Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU"
          (airbench), 2024.
    """
    num_images = check_int("num_images", num_images, 1)
    epoch = check_int("epoch", epoch, 0)
    seed = check_seed("seed", seed)
    base = np.random.default_rng(seed).random(num_images) < 0.5
    return base ^ bool(epoch % 2)


def flip_images(images: npt.ArrayLike, mask: npt.ArrayLike) -> np.ndarray:
    """Mirrors left-right the images of a batch where `mask` is `True`.

    Args:
        images: array of shape `(B, height, width, channels)`.
        mask: bool array of shape `(B,)`.

    Returns:
        A new array like `images`.
    """
    images = np.asarray(images)
    mask = np.asarray(mask, dtype=bool)
    if images.ndim != 4 or mask.shape != images.shape[:1]:
        raise invalid("mask", f"<array of shape {mask.shape}>",
                      f"a bool array of shape ({images.shape[0]},) for "
                      "images of shape (B, height, width, channels)")
    return np.where(mask[:, None, None, None], images[:, :, ::-1], images)


def tf_alternating_flip(
    num_images: int, seed: int | None = None,
) -> tuple[Callable[[tf.Tensor], tf.Tensor],
           Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]]:
    """The tf.data form of alternating flips, for array inputs.

    Counts the passes over the data in a `tf.Variable` (so the flips keep
    alternating although Keras iterates the dataset afresh on every epoch):
    `tag` must run in a sequential (not parallel) `map` over the batches, in
    order, and returns the epoch index of each batch; `flip` can then run in
    a parallel `map`. A pass that is started but not finished (such as the
    batch Keras reads to build the model before the first epoch) counts as
    an epoch, so the first training epoch may get the odd-epoch mask; every
    two consecutive passes still see each image once each way.

    Args:
        num_images: number of images in the array.
        seed: seed of the epoch-0 mask. Defaults to `None`.

    Returns:
        `(tag, flip)`: `tag(batch_index)` -> int64 epoch scalar (batch
        index 0 starts a new epoch); `flip(images, indices, epoch)` ->
        the images with `alternating_flip_mask(num_images, epoch, seed)`
        applied by image index.
    """
    import tensorflow as tf

    base = tf.constant(alternating_flip_mask(num_images, 0, seed))
    passes = tf.Variable(tf.constant(-1, tf.int64), trainable=False,
                         name="alternating_flip_epoch")

    def tag(batch_index: tf.Tensor) -> tf.Tensor:
        starts = tf.cast(tf.equal(batch_index, 0), tf.int64)
        return tf.identity(passes.assign_add(starts))

    def flip(images: tf.Tensor, indices: tf.Tensor,
             epoch: tf.Tensor) -> tf.Tensor:
        odd = tf.equal(epoch % 2, 1)
        mask = tf.math.logical_xor(tf.gather(base, indices), odd)
        return tf.where(mask[:, None, None, None],
                        tf.reverse(images, axis=[2]), images)

    return tag, flip
