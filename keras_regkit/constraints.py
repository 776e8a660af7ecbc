"""Weight constraints Keras lacks: a spectral-norm bound and centred unit norm.

Keras applies a constraint to its variable after every optimizer update.
The maths are plain functions (`spectral_norm`, `clip_spectral_norm`,
`centered_unit_norm`); the classes are thin, serializable wrappers usable as
`kernel_constraint=` of any Keras layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_regkit._registry import make_getter
from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_int
from keras_regkit._validation import check_positive
from keras_regkit._validation import invalid


def _as_matrix(w: Tensor) -> Tensor:
    """Reshapes a kernel to `(-1, out_units)`, out_units being the last axis."""
    if len(w.shape) < 2:
        return ops.reshape(w, (-1, 1))
    return ops.reshape(w, (-1, w.shape[-1]))


def spectral_norm(w: Tensor, power_iterations: int | None = None) -> Tensor:
    """Largest singular value of `w` reshaped to `(-1, w.shape[-1])`.

    Args:
        w: a kernel tensor (Dense `(in, out)`, Conv `(..., in, out)`).
        power_iterations: `None` for the exact value from `ops.svd`, or a
            number of power iterations (an estimate from below).
    """
    matrix = ops.cast(_as_matrix(ops.convert_to_tensor(w)), "float32")
    if power_iterations is None:
        return ops.max(ops.svd(matrix, compute_uv=False))
    n = matrix.shape[-1]
    v = ops.ones((n,), "float32") / ops.sqrt(ops.cast(n, "float32"))
    sigma = ops.zeros((), "float32")
    for _ in range(power_iterations):
        u = ops.matmul(matrix, v)
        u = u / ops.maximum(ops.norm(u), 1e-12)
        v = ops.matmul(ops.transpose(matrix), u)
        sigma = ops.norm(v)
        v = v / ops.maximum(sigma, 1e-12)
    return sigma


def clip_spectral_norm(w: Tensor, max_value: float = 1.0,
                       power_iterations: int | None = None) -> Tensor:
    """Rescales `w` so that its spectral norm is at most `max_value`.

    A kernel already within the bound is returned unchanged; otherwise it
    is multiplied by `max_value / sigma`, which keeps its direction.
    """
    w = ops.convert_to_tensor(w)
    sigma = spectral_norm(w, power_iterations)
    # max_value / max(sigma, max_value) is 1 inside the bound and never
    # divides by zero, since max_value > 0.
    scale = max_value / ops.maximum(sigma, max_value)
    return w * ops.cast(scale, w.dtype)


def centered_unit_norm(w: Tensor, axis: int | tuple[int, ...] = 0) -> Tensor:
    """Subtracts the mean along `axis`, then scales to unit L2 norm there."""
    w = ops.convert_to_tensor(w)
    centered = w - ops.mean(w, axis=axis, keepdims=True)
    norms = ops.sqrt(ops.sum(ops.square(centered), axis=axis, keepdims=True))
    # A slice that is constant up to rounding (relative to its own scale)
    # has no direction: it becomes exactly zero instead of amplified noise.
    scale = ops.sqrt(ops.sum(ops.square(w), axis=axis, keepdims=True))
    keep = norms > keras.config.epsilon() * scale
    safe = ops.where(keep, norms, ops.ones_like(norms))
    return ops.where(keep, centered / safe, ops.zeros_like(centered))


@register
class SpectralNormConstraint(keras.constraints.Constraint):
    """Bounds the spectral norm (the Lipschitz constant) of a kernel.

    After each update the kernel, seen as a matrix of shape
    `(-1, out_units)`, is rescaled so its largest singular value is at most
    `max_value`. Unlike `keras.layers.SpectralNormalization`, which always
    divides by a running power-iteration estimate, this is a projection: a
    kernel inside the bound is left as it is.

    By default sigma is exact (`ops.svd` without singular vectors). At the
    kernel sizes of CNNs on CPU it costs about as much as 20 power
    iterations (a few ms for 1152x128, ~60 ms for 4608x512) while power
    iterations from a fixed start, with no vector kept between steps, stay
    1-3% off on kernels whose top singular values are close. Pass
    `power_iterations` to trade exactness for speed on very large kernels;
    the estimate is from below, so the bound may then be exceeded slightly.

    Args:
        max_value: positive bound on the largest singular value.
            Defaults to `1.0`.
        power_iterations: `None` for exact SVD, or a positive number of
            power iterations. Defaults to `None`.

    Example:

    >>> layer = keras.layers.Dense(
    ...     64, kernel_constraint=SpectralNormConstraint(max_value=2.0))

    References:
        - Miyato et al., "Spectral normalization for generative adversarial
          networks", ICLR 2018.
        - Gouk et al., "Regularisation of neural networks by enforcing
          Lipschitz continuity", Machine Learning, 2021.
    """

    def __init__(self, max_value: float = 1.0,
                 power_iterations: int | None = None) -> None:
        self.max_value = check_positive("max_value", max_value)
        if power_iterations is not None:
            power_iterations = check_int("power_iterations", power_iterations,
                                         1)
        self.power_iterations = power_iterations

    def __call__(self, w: Tensor) -> Tensor:
        return clip_spectral_norm(w, self.max_value, self.power_iterations)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "power_iterations": self.power_iterations,
        }


def _check_axis(axis: Any) -> int | list[int]:
    expected = "an integer or a list/tuple of integers"
    if isinstance(axis, (list, tuple)):
        if not axis:
            raise invalid("axis", axis, expected)
        return [check_int("axis", a) for a in axis]
    try:
        return check_int("axis", axis)
    except ValueError:
        raise invalid("axis", axis, expected) from None


@register
class CenteredUnitNorm(keras.constraints.Constraint):
    """Centres the weights along `axis`, then scales them to unit L2 norm.

    Each slice along `axis` gets zero mean and unit norm, e.g. with the
    default `axis=0` each unit of a Dense kernel `(in, out)` sees zero-mean,
    unit-norm incoming weights. A constant slice (up to float rounding)
    centres to zero and is returned as exactly zero.

    Args:
        axis: integer or list of integers, the axes reduced over (like
            `keras.constraints.UnitNorm`). Defaults to `0`.

    Example:

    >>> layer = keras.layers.Dense(16, kernel_constraint=CenteredUnitNorm())

    References:
        - Huang et al., "Centered weight normalization in accelerating
          training of deep neural networks", ICCV 2017.
    """

    def __init__(self, axis: int | Sequence[int] = 0) -> None:
        self.axis = _check_axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        return centered_unit_norm(w, axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


get = make_getter("constraint", [SpectralNormConstraint, CenteredUnitNorm])
