"""Weight regularizers Keras lacks: elastic net, L2-SP and group lasso.

Each penalty is a plain function (`l2sp_penalty`, `group_lasso`) that the
tests pin down numerically; the classes are thin, serializable wrappers
usable as `kernel_regularizer=` of any Keras layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from keras_regkit._registry import make_getter
from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._walk import walk_layers
from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid

if TYPE_CHECKING:
    from typing_extensions import Self


def l2sp_penalty(x: Tensor, anchor: Tensor, alpha: float) -> Tensor:
    """Returns `alpha * sum((x - anchor) ** 2)`, the L2-SP penalty."""
    x = ops.convert_to_tensor(x)
    anchor = ops.convert_to_tensor(anchor, dtype=x.dtype)
    return ops.cast(alpha, x.dtype) * ops.sum(ops.square(x - anchor))


def group_lasso(x: Tensor, l: float, axis: int = -1) -> Tensor:  # noqa: E741
    """Returns `l * sum_g sqrt(|g|) * ||x_g||_2` over the groups along `axis`.

    Group `g` is the slice `x[..., g, ...]` taken at index `g` of `axis`
    (a unit of a Dense kernel, a filter of a Conv kernel for `axis=-1`);
    `|g|` is its number of elements. The norm of an all-zero group is 0 and
    its gradient there is 0 (a valid subgradient) instead of NaN.
    """
    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(
            f"`axis`={axis} is out of range for a weight of rank {rank} "
            f"(shape {tuple(x.shape)})."
        )
    axis = axis % rank
    others = tuple(i for i in range(rank) if i != axis)
    squares = ops.square(x)
    if others:
        squares = ops.sum(squares, axis=others)
    group_size = math.prod(int(x.shape[i]) for i in others)
    nonzero = squares > 0
    # The inner `where` keeps sqrt's infinite slope at 0 out of the gradient.
    safe = ops.where(nonzero, squares, ops.ones_like(squares))
    norms = ops.where(nonzero, ops.sqrt(safe), ops.zeros_like(squares))
    scale = ops.cast(l * math.sqrt(group_size), x.dtype)
    return scale * ops.sum(norms)


@register
class ElasticNet(keras.regularizers.L1L2):
    """Elastic-net penalty `l1 * sum(|x|) + l2 * sum(x ** 2)`.

    The same penalty as `keras.regularizers.L1L2` with Keras-form argument
    checks and useful defaults. Both factors may be zero: the regularizer is
    then inactive, which keeps a strength schedule that starts at zero valid.

    Args:
        l1: non-negative L1 factor. Defaults to `0.01`.
        l2: non-negative L2 factor. Defaults to `0.01`.

    Example:

    >>> layer = keras.layers.Dense(8, kernel_regularizer=ElasticNet(1e-4, 1e-3))

    References:
        - Zou and Hastie, "Regularization and variable selection via the
          elastic net", JRSS B, 2005.
    """

    def __init__(self, l1: float = 0.01, l2: float = 0.01) -> None:
        l1 = check_non_negative("l1", l1)
        l2 = check_non_negative("l2", l2)
        super().__init__(l1=l1, l2=l2)


def _as_anchor(anchor: Any) -> np.ndarray:
    expected = "an array-like of finite floats (the starting weights)"
    if anchor is None:
        raise invalid("anchor", anchor, expected)
    if isinstance(anchor, keras.Variable) or ops.is_tensor(anchor):
        anchor = ops.convert_to_numpy(anchor)
    try:
        array = np.asarray(anchor, dtype="float32")
    except (TypeError, ValueError):
        raise invalid("anchor", anchor, expected) from None
    if array.ndim == 0 or not np.all(np.isfinite(array)):
        raise invalid("anchor", anchor, expected)
    return array


@register
class L2SP(keras.regularizers.Regularizer, keras.Operation):
    """L2-SP: pulls weights toward their pre-trained starting point.

    The penalty is `alpha * sum((w - anchor) ** 2)`. Like
    `keras.regularizers.L2` (and unlike the paper's `alpha / 2` form) there
    is no factor 1/2, so `L2SP(a, anchor=zeros)` equals `L2(a)` and `alpha`
    here is the paper's `alpha / 2`. An anchor is required: L2 toward zero
    is plain weight decay, not L2-SP. Use `apply_l2sp` to anchor every kernel
    of a pre-trained model at its current value.

    The anchor is state of the model, not configuration: a model saved to
    `.keras` keeps it in the weights file, in binary, beside the kernel it
    anchors (Keras saves the state of every saveable attribute of a layer,
    and the regularizer is the layer's `kernel_regularizer`); the config
    holds only its shape. A file written before 0.1.0 with the anchor in its
    config still loads.

    Args:
        alpha: non-negative strength. Defaults to `0.01`.
        anchor: array-like with the weight's exact shape, the starting
            point (stored as float32). Required unless `anchor_shape` is
            given.
        anchor_shape: the anchor's shape when the anchor itself comes from a
            saved model's weights (what `from_config` passes). Defaults to
            `None`.

    Example:

    >>> w0 = np.zeros((4, 2), "float32")
    >>> layer = keras.layers.Dense(2, kernel_regularizer=L2SP(0.01, w0))

    References:
        - Li, Grandvalet and Davoine, "Explicit inductive bias for transfer
          learning with convolutional networks", ICML 2018.
    """

    def __init__(self, alpha: float = 0.01, anchor: Any = None,
                 anchor_shape: Sequence[int] | None = None) -> None:
        keras.Operation.__init__(self)
        self.alpha = check_non_negative("alpha", alpha)
        if anchor is None and anchor_shape is not None:
            shape = _as_shape(anchor_shape)
            self.anchor = np.zeros(shape, "float32")
            self._anchor_loaded = False
        else:
            self.anchor = _as_anchor(anchor)
            self._anchor_loaded = True

    def __call__(self, x: Tensor) -> Tensor:
        if tuple(x.shape) != self.anchor.shape:
            raise ValueError(
                "L2SP `anchor` must have the weight's shape. Received: "
                f"anchor.shape={self.anchor.shape}, weight "
                f"shape={tuple(x.shape)}"
            )
        return l2sp_penalty(x, self.anchor, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "anchor_shape": list(self.anchor.shape)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def save_own_variables(self, store: MutableMapping[str, Any]) -> None:
        store["anchor"] = self.anchor

    def load_own_variables(self, store: MutableMapping[str, Any]) -> None:
        if "anchor" not in store:
            if self._anchor_loaded:  # an older file: the config held it
                return
            raise ValueError(
                "This L2SP regularizer's anchor is missing from the saved "
                "weights, so the model cannot be restored with its starting "
                "point. Re-create it with apply_l2sp on the pre-trained model.")
        anchor = np.asarray(store["anchor"], "float32")
        if anchor.shape != self.anchor.shape:
            raise ValueError(
                "The saved L2SP anchor does not match the configured shape. "
                f"Received: anchor shape {anchor.shape}, expected "
                f"{self.anchor.shape}")
        self.anchor = anchor
        self._anchor_loaded = True


def _as_shape(shape: Any) -> tuple[int, ...]:
    valid = isinstance(shape, (list, tuple)) and len(shape) > 0 and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
        for d in shape)
    if not valid:
        raise invalid("anchor_shape", shape,
                      "a non-empty tuple of positive integers")
    return tuple(int(d) for d in shape)


def _kernel_variable(layer: keras.layers.Layer) -> keras.Variable | None:
    if not hasattr(layer, "kernel_regularizer") or not layer.built:
        return None
    try:
        kernel = layer.kernel
    except (AttributeError, ValueError):
        return None
    return kernel if isinstance(kernel, keras.Variable) else None


def apply_l2sp(
    model: keras.Model,
    alpha: float = 0.01,
    layers: Iterable[keras.layers.Layer | str] | None = None,
) -> list[keras.layers.Layer]:
    """Anchors L2-SP at the current value of each kernel of `model`.

    Call it on a built (typically pre-trained) model before compiling it
    for fine-tuning. Each selected layer gets `kernel_regularizer =
    L2SP(alpha, anchor=<current kernel>)`, replacing any previous kernel
    regularizer, so the penalty applies in training and is saved with the
    model.

    Args:
        model: a built Keras model (nested models are searched too).
        alpha: non-negative strength. Defaults to `0.01`.
        layers: `None` for every layer with a trainable-kernel variable, or
            an iterable of layers or layer names. Defaults to `None`.

    Returns:
        The list of layers that received an `L2SP` regularizer.

    Example:

    >>> backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> anchored = apply_l2sp(backbone, alpha=1e-3)
    >>> [type(layer.kernel_regularizer).__name__ for layer in anchored]
    ['L2SP']
    >>> backbone.compile(optimizer="sgd", loss="mse")
    """
    alpha = check_non_negative("alpha", alpha)
    if not isinstance(model, keras.Model):
        raise invalid("model", model, "a built keras.Model", TypeError)
    if not model.built:
        raise ValueError(
            "apply_l2sp needs a built model: its kernels are the anchors. "
            "Build or call the model first."
        )
    found = list(walk_layers(model, wrapped=False))
    if layers is None:
        chosen = [x for x in found if _kernel_variable(x) is not None]
    else:
        by_name = {x.name: x for x in found}
        chosen = []
        for item in layers:
            layer = by_name.get(item) if isinstance(item, str) else item
            if layer is None or _kernel_variable(layer) is None:
                raise invalid(
                    "layers", item, "layers (or names) of `model` that own a "
                    "built kernel variable"
                )
            chosen.append(layer)
    for layer in chosen:
        kernel = _kernel_variable(layer)
        assert kernel is not None  # chosen above for having one
        regularizer = L2SP(alpha, anchor=ops.convert_to_numpy(kernel))
        layer.kernel_regularizer = regularizer
        kernel.regularizer = regularizer
    return chosen


@register
class GroupLasso(keras.regularizers.Regularizer):
    """Group lasso: structured sparsity that zeroes whole units or filters.

    The penalty is `l * sum_g sqrt(|g|) * ||w_g||_2`, where group `g` is
    the slice of the weight at index `g` of `axis` and `|g|` its size. With
    the default `axis=-1` the groups are the units of a Dense kernel and the
    filters of a Conv kernel, so strong `l` switches whole units off. The
    gradient at an all-zero group is 0 (never NaN).

    Args:
        l: non-negative strength. Defaults to `0.01`.
        axis: integer axis that indexes the groups. Defaults to `-1`.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_regularizer=GroupLasso(1e-3))

    References:
        - Yuan and Lin, "Model selection and estimation in regression with
          grouped variables", JRSS B, 2006.
    """

    def __init__(self, l: float = 0.01,  # noqa: E741 (Keras-style name)
                 axis: int = -1) -> None:
        self.l = check_non_negative("l", l)
        self.axis = check_int("axis", axis)

    def __call__(self, x: Tensor) -> Tensor:
        return group_lasso(x, self.l, self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"l": self.l, "axis": self.axis}


get = make_getter("regularizer", [ElasticNet, L2SP, GroupLasso])
