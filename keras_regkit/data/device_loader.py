"""`DeviceArrayLoader`: training data and augmentation resident on a JAX
device, so no training step copies anything from the host.

`ArrayLoader` builds every batch in NumPy on the host and `fit` copies it
to the accelerator, step after step; on a fast GPU that copy and the NumPy
work, not the model, set the pace. Here the images go to the device once;
each epoch one compiled function shuffles them, applies the flips and
translations, scales them and cuts the epoch into batches, all on the
device, and `fit` receives device arrays it can use as they are.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

import keras

from keras_regkit._validation import check_choice
from keras_regkit._validation import invalid
from keras_regkit.data._checks import check_channel_stats
from keras_regkit.data._checks import check_images
from keras_regkit.data._checks import check_loader_args
from keras_regkit.data._checks import check_labels
from keras_regkit.data.array_loader import LOADER_AUGMENTATIONS
from keras_regkit.data.array_loader import TRANSLATE_PIXELS
from keras_regkit.data.flips import alternating_flip_mask

if TYPE_CHECKING:
    import jax

# One epoch on the device: `(image batches, label batches)`.
EpochBatches: TypeAlias = tuple[tuple["jax.Array", ...], tuple["jax.Array", ...]]

OUTPUT_DTYPES = ("float32", "bfloat16", "float16")


def _require_jax() -> None:
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(
            "DeviceArrayLoader keeps the data on a JAX device and needs the "
            f"JAX backend; the Keras backend is {backend!r}. Set "
            "KERAS_BACKEND=jax before importing Keras, or use ArrayLoader "
            "(any backend) or `make_dataset` (TensorFlow).")


def _epoch_batches(
    key: jax.Array, x: jax.Array, y: jax.Array, base_flip: jax.Array,
    mean: jax.Array | None, std: jax.Array | None, *, steps: int,
    batch_size: int, training: bool, flips: bool, alternating: bool,
    odd_epoch: bool, translate: int, scale: bool, dtype: str,
) -> tuple[jax.Array, tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """One epoch's batches, computed on the device (traced by `jax.jit`)."""
    import jax
    import jax.numpy as jnp

    key, perm_key, flip_key, shift_key = jax.random.split(key, 4)
    count = steps * batch_size if training else len(x)
    if training:
        order = jax.random.permutation(perm_key, len(x))[:count]
        x, y, base_flip = x[order], y[order], base_flip[order]
    if flips:
        if alternating:
            flip = jnp.logical_xor(base_flip, odd_epoch)
        else:
            flip = jax.random.bernoulli(flip_key, 0.5, (count,))
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    if translate:
        height, width, channels = x.shape[1:]
        pad = translate
        padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                         mode="symmetric")
        offsets = jax.random.randint(shift_key, (count, 2), 0, 2 * pad + 1)

        def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
            return jax.lax.dynamic_slice(
                image, (offset[0], offset[1], 0), (height, width, channels))

        x = jax.vmap(crop)(padded, offsets)
    x = x.astype(jnp.float32)
    if scale:
        x = x / 255.0
    if mean is not None:
        x = x - mean
    if std is not None:
        x = x / std
    x = x.astype(dtype)
    if training:
        return key, tuple(jnp.split(x, steps)), tuple(jnp.split(y, steps))
    bounds = list(range(batch_size, count, batch_size))
    return key, tuple(jnp.split(x, bounds)), tuple(jnp.split(y, bounds))


class DeviceArrayLoader(keras.utils.PyDataset):
    """In-device batches for `fit` on JAX, with the airbench data tricks.

    The images and labels are copied to the default JAX device once, at
    construction. At the first batch of each epoch one compiled function
    draws the epoch's order, applies the chosen flips and translations,
    converts to `dtype` (scaling uint8 to [0, 1], then `(x - mean) / std`
    when given) and splits the epoch into batches, without leaving the
    device; `fit` then receives device arrays, so a training step makes no
    host-to-device copy. The random state is a JAX key kept on the device.

    The augmentations mean what they mean in `ArrayLoader` (same names,
    same base flip mask from `alternating_flip_mask(N, 0, seed)`, the same
    symmetric padding for the 2-pixel translations); the random draws
    differ, since they come from JAX's generator. Training: a new order
    every epoch, the last partial batch dropped. Evaluation
    (`training=False`): the images in order, unchanged, every image kept.

    Use it with `steps_per_execution` in `compile` and no per-step Python
    work in callbacks (weight averaging inside the optimizer, e.g.
    `LookaheadOptimizer`), and a GPU step never waits for the host. The
    whole epoch is materialized once on the device: N images of
    `dtype` beside the uint8 originals.

    Args:
        x: images `(N, height, width, channels)`, uint8 or floats in [0, 1].
        y: integer labels `(N,)` or `(N, 1)`, or one-hot labels `(N, K)`.
        batch_size: images per batch, >= 1.
        training: `True` to shuffle, augment and drop the partial batch.
        augmentation: one of `"none"`, `"flip"`, `"alternating_flip"`,
            `"flip_translate2"` or `"alternating_flip_translate2"`, as in
            `ArrayLoader`. Training only. Defaults to `"none"`.
        num_classes: number of classes, for one-hot float32 labels.
            Defaults to `None`.
        seed: seed of the shuffles, flips and shifts; `None` draws one at
            construction. Defaults to `None`.
        normalize: scale uint8 images to [0, 1]. Defaults to `True`.
        mean: per-channel mean (or one float) subtracted after scaling.
            Defaults to `None`.
        std: per-channel standard deviation (or one float). Defaults to
            `None`.
        dtype: dtype of the image batches: `"float32"`, `"bfloat16"` or
            `"float16"` (half the memory and bandwidth under a mixed
            policy). Defaults to `"float32"`.

    Raises:
        RuntimeError: the Keras backend is not JAX.

    Example:

    ```python
    train = DeviceArrayLoader(x_train, y_train, 2000, training=True,
                              augmentation="alternating_flip_translate2",
                              num_classes=10, seed=0)
    model.compile(..., steps_per_execution=len(train))
    model.fit(train, epochs=8)
    ```
    """

    def __init__(self, x: npt.ArrayLike, y: npt.ArrayLike, batch_size: int,
                 training: bool, augmentation: str = "none",
                 num_classes: int | None = None, seed: int | None = None,
                 normalize: bool = True, mean: npt.ArrayLike | None = None,
                 std: npt.ArrayLike | None = None,
                 dtype: str = "float32") -> None:
        _require_jax()
        super().__init__(workers=1, use_multiprocessing=False)
        (self.batch_size, self.training, self.augmentation,
         self.num_classes, self.seed, self.normalize) = check_loader_args(
            batch_size, training, augmentation, num_classes, seed, normalize,
            LOADER_AUGMENTATIONS)
        self.dtype = check_choice("dtype", dtype, OUTPUT_DTYPES)
        augmenting = self.training and self.augmentation != "none"
        x = check_images(x, self.normalize, spatial=augmenting)
        y = check_labels(y, len(x), num_classes)
        if self.training and len(x) < self.batch_size:
            raise invalid("batch_size", batch_size,
                          f"at most the number of images ({len(x)}) when "
                          "training (the partial batch is dropped)")
        channels = x.shape[-1] if x.ndim == 4 else 1
        mean = check_channel_stats("mean", mean, channels, False)
        std = check_channel_stats("std", std, channels, True)
        self.num_images = len(x)
        self.epoch = 0
        self._prepared_epoch: int | None = None
        self._batches: EpochBatches | None = None

        import jax

        put = jax.device_put
        self._x = put(x)
        self._y = put(y)
        self._base_flip = put(alternating_flip_mask(len(x), 0, self.seed))
        self._mean = None if mean is None else put(mean)
        self._std = None if std is None else put(std)
        self._key = put(jax.random.key_data(
            jax.random.key(self.seed % 2**32)))
        flips = augmenting
        self._prepare = jax.jit(functools.partial(
            _prepare, steps=len(self), batch_size=self.batch_size,
            training=self.training, flips=flips,
            alternating=self.augmentation.startswith("alternating"),
            translate=(TRANSLATE_PIXELS if augmenting and
                       self.augmentation.endswith("translate2") else 0),
            scale=self.normalize and x.dtype == np.uint8,
            dtype=self.dtype), static_argnames=("odd_epoch",))

    def __len__(self) -> int:
        if self.training:
            return self.num_images // self.batch_size
        return -(-self.num_images // self.batch_size)

    def on_epoch_end(self) -> None:
        """Advances `epoch`: the next epoch gets a new order and flips."""
        self.epoch += 1

    def _epoch_batches(self) -> EpochBatches:
        if self._prepared_epoch != self.epoch or self._batches is None:
            self._key, images, labels = self._prepare(
                self._key, self._x, self._y, self._base_flip, self._mean,
                self._std, odd_epoch=bool(self.epoch % 2))
            self._batches = (images, labels)
            self._prepared_epoch = self.epoch
        return self._batches

    def __getitem__(self, index: int) -> tuple[jax.Array, jax.Array]:
        if isinstance(index, bool) or not isinstance(
                index, (int, np.integer)) or not 0 <= index < len(self):
            raise invalid("index", index,
                          f"an integer in [0, {len(self) - 1}]", IndexError)
        images, labels = self._epoch_batches()
        return images[int(index)], labels[int(index)]


def _prepare(key_data: jax.Array, x: jax.Array, y: jax.Array,
             base_flip: jax.Array, mean: jax.Array | None,
             std: jax.Array | None, *, odd_epoch: bool, **static: Any,
             ) -> tuple[jax.Array, tuple[jax.Array, ...],
                        tuple[jax.Array, ...]]:
    import jax

    key = jax.random.wrap_key_data(key_data)
    key, images, labels = _epoch_batches(key, x, y, base_flip, mean, std,
                                         odd_epoch=odd_epoch, **static)
    return jax.random.key_data(key), images, labels
