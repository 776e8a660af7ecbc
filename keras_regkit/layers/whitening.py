"""Patch whitening: a frozen convolution stem initialized from the data."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_int, check_non_negative, invalid

# Chunks of images hold about this many patches when no batch size is given.
_PATCHES_PER_CHUNK = 1_000_000


def _as_images(images: npt.ArrayLike, patch_size: int) -> np.ndarray:
    images = np.asarray(images)
    shown = f"<array of shape {images.shape}>"
    if images.ndim != 4 or not np.issubdtype(images.dtype, np.number):
        raise invalid("images", shown, "a numeric array of shape (N, H, W, C)")
    n, h, w, c = images.shape
    if n < 1 or c < 1 or h < patch_size or w < patch_size:
        raise invalid("images", shown,
                      f"at least one image of at least {patch_size}x"
                      f"{patch_size} pixels (patch_size={patch_size})")
    return images


def image_patches(images: np.ndarray, patch_size: int) -> np.ndarray:
    """Returns every valid p x p patch of (N, H, W, C) `images`, flattened.

    The flatten order is Conv2D's kernel order (row, column, channel), so
    `patches @ kernel.reshape(-1, filters)` is a valid-padding convolution.
    The result is float64, of shape (N * (H - p + 1) * (W - p + 1), p*p*C).
    """
    windows = np.lib.stride_tricks.sliding_window_view(
        np.asarray(images, dtype=np.float64), (patch_size, patch_size),
        axis=(1, 2))  # (N, H', W', C, p, p)
    windows = windows.transpose(0, 1, 2, 4, 5, 3)  # (N, H', W', p, p, C)
    return windows.reshape(-1, patch_size * patch_size * images.shape[-1])


class _PatchMoments:
    """Accumulates the count, sum and sum of outer products of patches."""

    def __init__(self, patch_size: int) -> None:
        self.patch_size = patch_size
        self.channels: int | None = None
        self.count = 0
        # Float64 arrays from the first batch on (its channels give their
        # size); 0 before.
        self.total: Any = 0
        self.outer: Any = 0

    def update(self, images: npt.ArrayLike,
               batch_size: int | None = None) -> None:
        images = _as_images(images, self.patch_size)
        if self.channels is None:
            self.channels = images.shape[-1]
            d = self.patch_size ** 2 * self.channels
            self.total, self.outer = np.zeros(d), np.zeros((d, d))
        elif images.shape[-1] != self.channels:
            raise invalid("images", f"<array of shape {images.shape}>",
                          f"{self.channels} channels like the first batch")
        if batch_size is None:
            per_image = ((images.shape[1] - self.patch_size + 1)
                         * (images.shape[2] - self.patch_size + 1))
            batch_size = max(1, _PATCHES_PER_CHUNK // per_image)
        for start in range(0, len(images), batch_size):
            patches = image_patches(images[start:start + batch_size],
                                    self.patch_size)
            self.count += len(patches)
            self.total += patches.sum(axis=0)
            self.outer += patches.T @ patches

    def whitening(self, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        """Returns the (kernel, bias) pair of the accumulated patches."""
        p, c = self.patch_size, self.channels
        assert c is not None  # every caller has given a batch first
        mean = self.total / self.count
        cov = self.outer / self.count - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues = np.clip(eigenvalues[order], 0.0, None)
        eigenvectors = eigenvectors[:, order]
        if np.any(eigenvalues + epsilon <= 0):
            raise ValueError(
                "The patch covariance is singular (constant or degenerate "
                "images), so whitening needs `epsilon` > 0. Received: "
                f"epsilon={epsilon}")
        filters = eigenvectors / np.sqrt(eigenvalues + epsilon)
        kernel = np.concatenate([filters, -filters], axis=1)
        shift = mean @ filters
        bias = np.concatenate([-shift, shift])
        kernel = kernel.reshape(p, p, c, 2 * p * p * c)
        return kernel.astype("float32"), bias.astype("float32")


def patch_whitening_kernel(
    images: npt.ArrayLike,
    patch_size: int = 2,
    epsilon: float = 5e-4,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Computes a convolution that whitens the patches of `images`.

    All valid `patch_size x patch_size` patches are flattened to
    `d = p * p * C` values. With their mean `m` and covariance
    `S = V diag(l) V^T` (eigenvalues in decreasing order), the whitening
    filters are the columns of `W = V / sqrt(l + epsilon)`. The kernel holds
    `[W, -W]` (2d filters) and the bias `[-m W, m W]`, so the first `d`
    output channels of the convolution are the centered, decorrelated,
    unit-variance patch coordinates (variance `l / (l + epsilon)`) and the
    last `d` their negatives (a ReLU then keeps both signs). The statistics
    are exact over every patch, accumulated in float64 over chunks of
    images so memory stays bounded.

    Args:
        images: Array of shape (N, H, W, C), as the convolution will see
            them (e.g. after any normalization).
        patch_size: Side of the square patches, an integer >= 1.
            Defaults to `2`.
        epsilon: Non-negative float added to the eigenvalues; it limits the
            gain of the low-variance directions. Defaults to `5e-4`.
        batch_size: Images per chunk of the statistics, or `None` for
            chunks of about a million patches. Defaults to `None`.

    Returns:
        `(kernel, bias)`: float32 arrays of shapes (p, p, C, 2 * p * p * C)
        and (2 * p * p * C,).

    Example:

    >>> x = np.random.default_rng(0).random((16, 8, 8, 3))
    >>> kernel, bias = patch_whitening_kernel(x, patch_size=2)
    >>> kernel.shape, bias.shape
    ((2, 2, 3, 24), (24,))

    References:
        - Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024
          (airbench), https://arxiv.org/abs/2404.00498
    """
    patch_size = check_int("patch_size", patch_size, 1)
    epsilon = check_non_negative("epsilon", epsilon)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    moments = _PatchMoments(patch_size)
    moments.update(images, batch_size)
    return moments.whitening(epsilon)


@register
class PatchWhitening(keras.layers.Layer):
    """A frozen, data-initialized patch-whitening convolution (airbench stem).

    A valid-padding `patch_size x patch_size` convolution with
    `2 * p * p * C` filters (C input channels). The kernel is not trained:
    call `adapt(images)` once to set it, and the bias, from the whitening of
    the images' patches (`patch_whitening_kernel`). The bias is trainable,
    and its training can be switched off during `fit` without recompiling
    (`set_bias_trainable(False)`, or the `WhiteningBiasFreezer` callback):
    the layer then uses a frozen copy of the bias, so neither momentum nor
    weight decay can move it. Before `adapt` the kernel is He-uniform and
    `adapted` is `False`.

    Args:
        patch_size: Side of the square kernel, an integer >= 1.
            Defaults to `2`.
        epsilon: Non-negative float added to the eigenvalues in `adapt`.
            Defaults to `5e-4`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Images of shape (batch, H, W, C), channels last.

    Example:

    >>> x = np.random.default_rng(0).random((32, 32, 32, 3), "float32")
    >>> stem = PatchWhitening(patch_size=2)
    >>> stem.adapt(x)
    >>> tuple(stem(x).shape)
    (32, 31, 31, 24)

    References:
        - Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024
          (airbench), https://arxiv.org/abs/2404.00498
    """

    def __init__(self, patch_size: int = 2, epsilon: float = 5e-4,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patch_size = check_int("patch_size", patch_size, 1)
        self.epsilon = check_non_negative("epsilon", epsilon)

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[-1]
        if len(input_shape) != 4 or channels is None:
            raise ValueError(
                "PatchWhitening expects inputs of shape (batch, H, W, C) with "
                f"a known C. Received: input_shape={input_shape}")
        for size in input_shape[1:3]:
            if size is not None and size < self.patch_size:
                raise ValueError(
                    f"PatchWhitening(patch_size={self.patch_size}) needs "
                    f"images of at least {self.patch_size}x{self.patch_size}"
                    f" pixels. Received: input_shape={input_shape}")
        p = self.patch_size
        self.filters = 2 * p * p * channels
        self.kernel = self.add_weight(
            name="kernel", shape=(p, p, channels, self.filters),
            initializer="he_uniform", trainable=False)
        self.bias = self.add_weight(
            name="bias", shape=(self.filters,), initializer="zeros")
        self.frozen_bias = self.add_weight(
            name="frozen_bias", shape=(self.filters,), initializer="zeros",
            trainable=False)
        self.bias_trainable = self.add_weight(
            name="bias_trainable", shape=(), initializer="ones",
            trainable=False, autocast=False)
        self.adapted_flag = self.add_weight(
            name="adapted", shape=(), initializer="zeros", trainable=False,
            autocast=False)

    @property
    def adapted(self) -> bool:
        """Whether `adapt` has set the kernel (survives `.keras` saving)."""
        if not self.built:
            return False
        return bool(ops.convert_to_numpy(self.adapted_flag) > 0.5)

    def adapt(self, data: Any, batch_size: int | None = None) -> None:
        """Sets the kernel and bias from the whitening of `data`'s patches.

        Args:
            data: Images of shape (N, H, W, C) as the layer sees them, or an
                iterable of such batches (e.g. a `tf.data.Dataset`); a batch
                given as a tuple `(images, labels)` uses the images.
            batch_size: Images per chunk of the statistics, or `None` for
                chunks of about a million patches. Defaults to `None`.
        """
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, 1)
        moments = _PatchMoments(self.patch_size)
        if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
            moments.update(data, batch_size)
        else:
            for batch in data:
                if isinstance(batch, (tuple, list)):
                    batch = batch[0]
                moments.update(ops.convert_to_numpy(batch), batch_size)
            if moments.count == 0:
                raise invalid("data", data, "at least one batch of images")
        if not self.built:
            self.build((None, None, None, moments.channels))
        elif moments.channels != self.kernel.shape[2]:
            raise ValueError(
                f"PatchWhitening was built for {self.kernel.shape[2]} input "
                f"channels; adapt received images with {moments.channels}.")
        kernel, bias = moments.whitening(self.epsilon)
        self.kernel.assign(kernel)
        self.bias.assign(bias)
        self.frozen_bias.assign(bias.copy())  # its own buffer (JAX)
        self.adapted_flag.assign(1.0)

    def set_bias_trainable(self, flag: bool) -> None:
        """Switches bias training on or off (`flag`: bool), no recompiling.

        Off snapshots the bias into `frozen_bias`, which the layer then
        uses; on restores the bias from it, so the bias used is continuous.
        """
        if not isinstance(flag, (bool, np.bool_)):
            raise invalid("flag", flag, "a bool")
        if not self.built:
            raise ValueError("PatchWhitening.set_bias_trainable needs a built "
                             "layer: call the layer or `adapt` first.")
        if self.bias_trainable_now == bool(flag):
            return
        # Copies through NumPy: on JAX two variables must not share a buffer.
        if flag:
            self.bias.assign(ops.convert_to_numpy(self.frozen_bias))
        else:
            self.frozen_bias.assign(ops.convert_to_numpy(self.bias))
        self.bias_trainable.assign(1.0 if flag else 0.0)

    @property
    def bias_trainable_now(self) -> bool:
        """Whether the bias is currently trained."""
        return bool(ops.convert_to_numpy(self.bias_trainable) > 0.5)

    @property
    def effective_bias(self) -> np.ndarray:
        """The bias the layer currently adds, as a NumPy array."""
        if self.bias_trainable_now:
            return ops.convert_to_numpy(self.bias)
        return ops.convert_to_numpy(self.frozen_bias)

    def call(self, inputs: Tensor) -> Tensor:
        dtype = self.compute_dtype
        s = ops.cast(self.bias_trainable, dtype)
        bias = s * ops.cast(self.bias, dtype) + (1 - s) * ops.cast(
            self.frozen_bias, dtype)
        outputs = ops.conv(ops.cast(inputs, dtype),
                           ops.cast(self.kernel, dtype), strides=1,
                           padding="valid", data_format="channels_last")
        return outputs + bias

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        batch, height, width, channels = input_shape
        p = self.patch_size
        height = None if height is None else height - p + 1
        width = None if width is None else width - p + 1
        filters = None if channels is None else 2 * p * p * channels
        return (batch, height, width, filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "patch_size": self.patch_size,
                "epsilon": self.epsilon}
