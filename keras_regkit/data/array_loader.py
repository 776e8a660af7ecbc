"""A TensorFlow-free in-memory loader: NumPy batches for `model.fit`.

`ArrayLoader` is a `keras.utils.PyDataset`, so it feeds `fit`, `evaluate`
and `predict` on the TensorFlow, JAX and PyTorch backends, and works where
TensorFlow is not installed (nothing here imports it). It does the airbench
data tricks in vectorized NumPy: a seeded reshuffle every epoch,
alternating or random horizontal flips, and 2-pixel translations with
reflected borders, then MixUp or CutMix when asked. The array checks
`make_dataset` shares live here too.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

import numpy as np
import numpy.typing as npt

import keras

from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid
from keras_regkit.data._checks import check_channel_stats
from keras_regkit.data._checks import check_images
from keras_regkit.data._checks import check_loader_args
from keras_regkit.data._checks import check_labels
from keras_regkit.data.flips import alternating_flip_mask
from keras_regkit.data.flips import flip_images



class _DataRecipe(Protocol):
    """The preset fields `ArrayLoader.from_preset` reads (a `CapacityPreset`)."""

    @property
    def name(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def augmentation(self) -> str: ...
    @property
    def mixup_alpha(self) -> float: ...
    @property
    def cutmix_alpha(self) -> float: ...

LOADER_AUGMENTATIONS = ("none", "flip", "alternating_flip",
                        "flip_translate2", "alternating_flip_translate2")
TRANSLATE_PIXELS = 2


def check_loader_augmentation(preset_name: str, augmentation: str,
                              instead: str) -> None:
    """Refuses a preset policy that `ArrayLoader` cannot apply.

    Args:
        preset_name: the preset's name, for the message.
        augmentation: the preset's `augmentation`.
        instead: what to do instead, the message's last sentence.

    Raises:
        ValueError: naming the preset, the field, its value, what the
            loader applies and `instead`.
    """
    if augmentation not in LOADER_AUGMENTATIONS:
        allowed = ", ".join(repr(a) for a in LOADER_AUGMENTATIONS)
        raise ValueError(
            f"The preset {preset_name!r} sets augmentation="
            f"{augmentation!r}, which ArrayLoader cannot apply (it applies "
            f"{allowed}). {instead}")


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


def mix_arrays(images: np.ndarray, labels: np.ndarray, mixup_alpha: float,
               cutmix_alpha: float, rng: np.random.Generator,
               ) -> tuple[np.ndarray, np.ndarray]:
    """MixUp or CutMix on a NumPy batch, with the rules of `mix_batch`.

    One `lam ~ Beta(alpha, alpha)` and one random pairing per batch. MixUp
    blends each image with its partner by `lam`; CutMix pastes a box of
    the partner's pixels, with sides `sqrt(1 - lam)` times the image's and
    a uniform centre, clipped to the image. The labels are blended with the
    weight the pixels actually kept, so every row still sums to 1. With
    both alphas above 0, each batch gets one of the two, half the time
    each; with both 0 the batch is returned unchanged.

    Args:
        images: float images `(B, height, width, channels)`.
        labels: one-hot or soft labels `(B, K)`.
        mixup_alpha: MixUp's Beta concentration; 0 turns it off.
        cutmix_alpha: CutMix's Beta concentration; 0 turns it off.
        rng: a `np.random.Generator`.

    Returns:
        `(images, labels)`, float32.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> images = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))])
    >>> labels = np.eye(2)
    >>> mixed, soft = mix_arrays(images, labels, 0.0, 1.0, rng)
    >>> bool(np.allclose(soft.sum(-1), 1.0))
    True
    >>> bool(np.allclose(mixed.mean((1, 2, 3)), soft[:, 1]))  # kept area
    True

    References:
        - Zhang et al., "mixup: Beyond Empirical Risk Minimization",
          ICLR 2018.
        - Yun et al., "CutMix: Regularization Strategy to Train Strong
          Classifiers with Localizable Features", ICCV 2019.
    """
    mixup_alpha = check_non_negative("mixup_alpha", mixup_alpha)
    cutmix_alpha = check_non_negative("cutmix_alpha", cutmix_alpha)
    if mixup_alpha == 0 and cutmix_alpha == 0:
        return images, labels
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_mixup = bool(rng.random() < 0.5)
    else:
        use_mixup = mixup_alpha > 0
    alpha = mixup_alpha if use_mixup else cutmix_alpha
    lam = float(rng.beta(alpha, alpha))
    partners = rng.permutation(len(images))
    if use_mixup:
        images = lam * images + (1.0 - lam) * images[partners]
        kept = lam
    else:
        height, width = images.shape[1:3]
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = round(ratio * height), round(ratio * width)
        centre_y, centre_x = rng.integers(0, height), rng.integers(0, width)
        top, bottom = np.clip([centre_y - cut_h // 2,
                               centre_y - cut_h // 2 + cut_h], 0, height)
        left, right = np.clip([centre_x - cut_w // 2,
                               centre_x - cut_w // 2 + cut_w], 0, width)
        images = images.copy()
        images[:, top:bottom, left:right] = (
            images[partners, top:bottom, left:right])
        kept = 1.0 - (bottom - top) * (right - left) / (height * width)
    labels = kept * labels + (1.0 - kept) * labels[partners]
    return images.astype(np.float32), labels.astype(np.float32)


class ArrayLoader(keras.utils.PyDataset):
    """In-memory NumPy batches for `fit`, with the airbench data tricks.

    Training: a new seeded order every epoch (`rng(seed, epoch)`), then per
    batch the chosen flips and translation, vectorized in NumPy, then
    MixUp or CutMix when an alpha is above 0 (`mix_arrays`); the last
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
        mixup_alpha: MixUp's Beta concentration, >= 0; 0 turns it off.
            Training only; needs one-hot labels (`num_classes` or one-hot
            `y`). Defaults to `0.0`.
        cutmix_alpha: CutMix's Beta concentration, >= 0; 0 turns it off.
            With both alphas above 0, each batch gets one of the two.
            Defaults to `0.0`.
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
                 std: npt.ArrayLike | None = None, mixup_alpha: float = 0.0,
                 cutmix_alpha: float = 0.0, **kwargs: Any) -> None:
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
        self.mixup_alpha = check_non_negative("mixup_alpha", mixup_alpha)
        self.cutmix_alpha = check_non_negative("cutmix_alpha", cutmix_alpha)
        for name in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, name) > 0 and self.y.ndim != 2:
                raise invalid(name, getattr(self, name), "0 with integer "
                              "labels: mixing blends labels, so pass "
                              "`num_classes` (or one-hot `y`)")
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
        labels = self.y[ids]
        if self.training and (self.mixup_alpha or self.cutmix_alpha):
            rng = np.random.default_rng([self.seed, self.epoch, 3, index])
            images, labels = mix_arrays(images, labels, self.mixup_alpha,
                                        self.cutmix_alpha, rng)
        return images, labels

    @classmethod
    def from_preset(cls, x: npt.ArrayLike, y: npt.ArrayLike,
                    preset: _DataRecipe, training: bool,
                    num_classes: int | None = None, seed: int | None = None,
                    **kwargs: Any) -> ArrayLoader:
        """A loader that applies a preset's data recipe, all of it or none.

        Takes `batch_size`, `augmentation`, `mixup_alpha` and
        `cutmix_alpha` from the preset. A preset field this loader cannot
        honour (an augmentation policy other than the flips and shifts of
        `LOADER_AUGMENTATIONS`, such as the `"standard"` policy of the
        medium preset) raises a `ValueError` that names the field, instead
        of being dropped; `make_dataset` (tf.data) applies every policy.

        Args:
            x: images, as for `ArrayLoader`.
            y: labels, as for `ArrayLoader`; integer labels need
                `num_classes` when the preset mixes.
            preset: a `CapacityPreset` (from `get_preset`).
            training: `True` for the training loader.
            num_classes: number of classes, for one-hot labels. Defaults
                to `None`.
            seed: the loader's seed. Defaults to `None`.
            **kwargs: any other `ArrayLoader` argument (`normalize`,
                `mean`, `std`, `drop_remainder`, ...).

        Returns:
            An `ArrayLoader`.

        Raises:
            ValueError: the preset asks for what this loader cannot do.

        Example:

        >>> from keras_regkit import get_preset
        >>> x = np.zeros((8, 32, 32, 3), np.uint8)
        >>> loader = ArrayLoader.from_preset(
        ...     x, np.arange(8) % 2, get_preset("fast"), training=True,
        ...     num_classes=2)
        >>> loader.batch_size, loader.augmentation
        (1024, 'alternating_flip_translate2')
        >>> ArrayLoader.from_preset(x, np.arange(8) % 2, get_preset("medium"),
        ...                         True)
        Traceback (most recent call last):
        ...
        ValueError: The preset 'medium' sets augmentation='standard', which
        ArrayLoader cannot apply ...
        """
        # Data sits below models in the package's layers: the preset comes
        # in as an object, never looked up by name here.
        fields = ("name", "batch_size", "augmentation", "mixup_alpha",
                  "cutmix_alpha")
        if not all(hasattr(preset, f) for f in fields):
            raise invalid("preset", preset, "a CapacityPreset, e.g. "
                          "`get_preset(\"fast\")`", TypeError)
        taken = {"batch_size", "augmentation", "mixup_alpha", "cutmix_alpha"}
        clash = sorted(taken & set(kwargs))
        if clash:
            given = ", ".join(f"{k}={kwargs[k]!r}" for k in clash)
            raise TypeError(
                f"ArrayLoader.from_preset() takes {', '.join(clash)} from "
                "the preset: pass `preset.replace(...)` instead of the "
                f"keyword argument. Received: {given}")
        check_loader_augmentation(
            preset.name, preset.augmentation,
            "Train through `make_dataset` (tf.data) or "
            "`ProductionModelBuilder`, or pass "
            "`preset.replace(augmentation=...)` with one of those.")
        if num_classes is None and (preset.mixup_alpha or preset.cutmix_alpha):
            y_array = np.asarray(y)
            if y_array.ndim != 2 or y_array.shape[-1] == 1:
                name = "mixup_alpha" if preset.mixup_alpha else "cutmix_alpha"
                raise ValueError(
                    f"The preset {preset.name!r} sets {name}="
                    f"{getattr(preset, name)!r}; mixing blends labels, so "
                    "pass `num_classes` (or one-hot `y`).")
        return cls(x, y, preset.batch_size, training,
                   augmentation=preset.augmentation, num_classes=num_classes,
                   seed=seed, mixup_alpha=preset.mixup_alpha,
                   cutmix_alpha=preset.cutmix_alpha, **kwargs)
