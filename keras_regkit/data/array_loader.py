"""A TensorFlow-free in-memory loader: NumPy batches for `model.fit`.

`ArrayLoader` is a `keras.utils.PyDataset`, so it feeds `fit`, `evaluate`
and `predict` on the TensorFlow, JAX and PyTorch backends, and works where
TensorFlow is not installed (nothing here imports it). It does the airbench
data tricks in vectorized NumPy: a seeded reshuffle every epoch,
alternating or random horizontal flips, and 2-pixel translations with
reflected borders. The array checks `make_dataset` shares live here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import keras

from keras_regkit._validation import invalid
from keras_regkit.data._checks import check_channel_stats
from keras_regkit.data._checks import check_images
from keras_regkit.data._checks import check_loader_args
from keras_regkit.data._checks import check_labels
from keras_regkit.data.flips import alternating_flip_mask
from keras_regkit.data.flips import flip_images

LOADER_AUGMENTATIONS = ("none", "flip", "alternating_flip",
                        "flip_translate2", "alternating_flip_translate2")
TRANSLATE_PIXELS = 2


def random_translate(images: np.ndarray, pixels: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Shifts each image by up to `pixels` each way, reflecting the borders.

    Pads with NumPy's "symmetric" mode (`d c b a | a b c d | d c b a`, the
    edge pixel repeated), which is what Keras's `RandomTranslation(...,
    fill_mode="reflect", interpolation="nearest")` fills with, then crops
    every image at its own offset drawn uniformly from `[0, 2 * pixels]`
    on each axis, with one fancy-indexing gather (no loop over images).

    Args:
        images: array `(B, height, width, channels)`.
        pixels: the largest shift, an integer >= 0.
        rng: a `np.random.Generator`.

    Returns:
        The shifted images, same shape and dtype.
    """
    if pixels == 0:
        return images
    batch, height, width = images.shape[:3]
    pad = ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0))
    padded = np.pad(images, pad, mode="symmetric")
    offsets = rng.integers(0, 2 * pixels + 1, size=(2, batch))
    rows = offsets[0][:, None] + np.arange(height)
    cols = offsets[1][:, None] + np.arange(width)
    return padded[np.arange(batch)[:, None, None], rows[:, :, None],
                  cols[:, None, :]]


class ArrayLoader(keras.utils.PyDataset):
    """In-memory NumPy batches for `fit`, with the airbench data tricks.

    Training: a new seeded order every epoch (`rng(seed, epoch)`), then per
    batch the chosen flips and translation, vectorized in NumPy; the last
    partial batch is dropped. Evaluation: the images in order, unchanged,
    every image kept. Images come out float32 (in [0, 1] for uint8 input
    with `normalize=True`, then `(x - mean) / std` when given); labels come
    out one-hot float32 when `num_classes` is given, else int32 `(N,)` (or
    float32 as given for one-hot input). Keras calls `on_epoch_end`, which
    advances `epoch`: after every epoch, and (Keras 3.15) once more before
    the first when `fit` reads a batch to build the model, so the first
    training epoch may run with `epoch == 1`; consecutive training epochs
    still get consecutive `epoch` values, so alternating flips alternate.
    Batches depend only on `(seed, epoch, index)`, not on the order or the
    threads that read them.

    Args:
        x: images `(N, height, width, channels)`, uint8 or floats in [0, 1].
        y: integer labels `(N,)` or `(N, 1)`, or one-hot labels `(N, K)`.
        batch_size: images per batch, >= 1.
        training: `True` to shuffle, augment and drop the partial batch.
        augmentation: one of `"none"`, `"flip"` (random flips),
            `"alternating_flip"` (see `alternating_flip_mask`),
            `"flip_translate2"` (random flips and shifts of up to 2 pixels)
            or `"alternating_flip_translate2"`. Training only. Defaults to
            `"none"`.
        num_classes: number of classes, for one-hot float32 labels.
            Defaults to `None`.
        seed: seed of the shuffles, flips and shifts; `None` draws one at
            construction. Defaults to `None`.
        normalize: scale uint8 images to [0, 1]. Defaults to `True`.
        drop_remainder: drop the last partial batch. Defaults to `None`
            (dropped when training, if there is at least one full batch).
        mean: per-channel mean (or one float) subtracted after scaling.
            Defaults to `None`.
        std: per-channel standard deviation (or one float) divided by
            after subtracting `mean`. Defaults to `None`.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    ```python
    train = ArrayLoader(x_train, y_train, 512, training=True,
                        augmentation="alternating_flip_translate2",
                        num_classes=10, seed=0)
    val = ArrayLoader(x_val, y_val, 1000, training=False, num_classes=10)
    model.fit(train, validation_data=val, epochs=10)
    ```

    References:
        - Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU"
          (airbench), 2024.
    """

    def __init__(self, x: npt.ArrayLike, y: npt.ArrayLike, batch_size: int,
                 training: bool, augmentation: str = "none",
                 num_classes: int | None = None, seed: int | None = None,
                 normalize: bool = True, drop_remainder: bool | None = None,
                 mean: npt.ArrayLike | None = None,
                 std: npt.ArrayLike | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        (self.batch_size, self.training, self.augmentation,
         self.num_classes, self.seed, self.normalize) = check_loader_args(
            batch_size, training, augmentation, num_classes, seed, normalize,
            LOADER_AUGMENTATIONS)
        augmenting = self.training and self.augmentation != "none"
        self.x = check_images(x, self.normalize, spatial=augmenting)
        self.y = check_labels(y, len(self.x), num_classes)
        channels = self.x.shape[-1] if self.x.ndim == 4 else 1
        self.mean = check_channel_stats("mean", mean, channels, False)
        self.std = check_channel_stats("std", std, channels, True)
        if drop_remainder is None:
            drop_remainder = self.training and len(self.x) >= self.batch_size
        if not isinstance(drop_remainder, (bool, np.bool_)):
            raise invalid("drop_remainder", drop_remainder,
                          "None, True or False")
        if drop_remainder and len(self.x) < self.batch_size:
            raise invalid("drop_remainder", drop_remainder, "False (or None) "
                          f"when there are fewer images ({len(self.x)}) "
                          f"than `batch_size` ({self.batch_size})")
        self.drop_remainder = bool(drop_remainder)
        self.epoch = 0
        self._order: tuple[int, np.ndarray] | None = None
        self._base_flip = alternating_flip_mask(len(self.x), 0, self.seed)

    def __len__(self) -> int:
        n = len(self.x)
        if self.drop_remainder:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def on_epoch_end(self) -> None:
        """Advances `epoch`: the next epoch gets a new order and flips."""
        self.epoch += 1

    def _epoch_order(self) -> np.ndarray:
        order = self._order
        if order is None or order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            order = (self.epoch, rng.permutation(len(self.x)))
            self._order = order
        return order[1]

    def indices(self, index: int) -> np.ndarray:
        """The image indices of batch `index` in the current epoch."""
        if isinstance(index, bool) or not isinstance(
                index, (int, np.integer)) or not 0 <= index < len(self):
            raise invalid("index", index,
                          f"an integer in [0, {len(self) - 1}]", IndexError)
        index = int(index)
        start = index * self.batch_size
        stop = start + self.batch_size
        if not self.training:
            return np.arange(start, min(stop, len(self.x)))
        return self._epoch_order()[start:stop]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        ids = self.indices(index)
        images = self.x[ids]
        if self.training and self.augmentation != "none":
            rng = np.random.default_rng([self.seed, self.epoch, 2, index])
            if self.augmentation.startswith("alternating"):
                flip = self._base_flip[ids] ^ bool(self.epoch % 2)
            else:
                flip = rng.random(len(ids)) < 0.5
            images = flip_images(images, flip)
            if self.augmentation.endswith("translate2"):
                images = random_translate(images, TRANSLATE_PIXELS, rng)
        images = images.astype(np.float32)
        if self.normalize and self.x.dtype == np.uint8:
            images /= 255.0
        if self.mean is not None:
            images -= self.mean
        if self.std is not None:
            images /= self.std
        return images, self.y[ids]
