"""Label-smoothing cross-entropy for one-hot, soft and integer labels.

`label_smoothing_cross_entropy` is the maths; `LabelSmoothingCrossEntropy`
is a thin `keras.losses.Loss` around it. Keras smooths only one-hot labels
(`CategoricalCrossentropy(label_smoothing=...)`); this loss also smooths
integer labels, without ever building a one-hot target.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_int
from keras_regkit._validation import check_rate
from keras_regkit._validation import invalid


def _is_integer(x: Tensor) -> bool:
    return "int" in str(ops.dtype(x))


def smooth_labels(y: Tensor, epsilon: float,
                  num_classes: int | None = None) -> Tensor:
    """Returns `(1 - epsilon) * y + epsilon / K` as float targets.

    Args:
        y: one-hot or soft labels `(..., K)`, or integer labels `(...)`
            (then `num_classes` is required and a one-hot is built).
        epsilon: smoothing in [0, 1).
        num_classes: `K`; defaults to the last dimension of `y`.
    """
    epsilon = check_rate("epsilon", epsilon)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, 1)
    y = ops.convert_to_tensor(y)
    if _is_integer(y) and (len(y.shape) < 2 or y.shape[-1] == 1):
        if num_classes is None:
            raise ValueError(
                "smooth_labels needs `num_classes` for integer labels. "
                f"Received: y.shape={tuple(y.shape)}"
            )
        if len(y.shape) >= 2:
            y = ops.squeeze(y, axis=-1)
        y = ops.one_hot(y, num_classes)
    k = y.shape[-1]
    if num_classes is not None and k != num_classes:
        raise ValueError(
            f"`num_classes`={num_classes} does not match the last dimension "
            f"of `y`. Received: y.shape={tuple(y.shape)}"
        )
    y = ops.cast(y, keras.config.floatx())
    return y * (1.0 - epsilon) + epsilon / k


def _log_probs(y_pred: Tensor, from_logits: bool, axis: int) -> Tensor:
    # On TensorFlow, Keras's softmax caches its logits on its output and
    # Keras's cross-entropy then uses them; do the same so results match.
    logits = getattr(y_pred, "_keras_logits", None)
    tf_backend = keras.backend.backend() == "tensorflow"
    if tf_backend and not from_logits and logits is not None:
        y_pred, from_logits = logits, True
    if from_logits:
        return ops.log_softmax(y_pred, axis=axis)
    # As Keras: renormalize the probabilities, clip, then take the log.
    eps = keras.config.epsilon()
    y_pred = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    return ops.log(ops.clip(y_pred, eps, 1.0 - eps))


def _resolve_sparse(y_true: Tensor, y_pred: Tensor, sparse: bool | None,
                    axis: int) -> tuple[bool, int, bool]:
    """Decides dense vs integer labels and checks the static shapes."""
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    rank = len(pred_shape)
    if not -rank <= axis < rank:
        raise ValueError(
            f"`axis`={axis} is out of range for `y_pred` of rank {rank}. "
            f"Received: y_true.shape={true_shape}, y_pred.shape={pred_shape}"
        )
    axis = axis % rank
    class_free = pred_shape[:axis] + pred_shape[axis + 1:]

    def same(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
        return len(a) == len(b) and all(
            i is None or j is None or i == j for i, j in zip(a, b)
        )

    squeezed = None
    if len(true_shape) == rank and true_shape[axis] == 1:
        squeezed = true_shape[:axis] + true_shape[axis + 1:]
    sparse_ok = same(true_shape, class_free) or (
        squeezed is not None and same(squeezed, class_free)
        and pred_shape[axis] != 1
    )
    dense_ok = same(true_shape, pred_shape)
    if sparse is None:
        sparse = sparse_ok and not (dense_ok and not _is_integer(y_true))
    if not (sparse_ok if sparse else dense_ok):
        kind = "integer labels" if sparse else "one-hot or soft labels"
        raise ValueError(
            f"`y_true` shape does not fit `y_pred` shape for {kind}: "
            f"expected y_true.shape={pred_shape} (one-hot or soft) or "
            f"{class_free} (integer). Received: "
            f"y_true.shape={true_shape}, y_pred.shape={pred_shape}"
        )
    return sparse, axis, len(true_shape) == rank


def label_smoothing_cross_entropy(
    y_true: Tensor,
    y_pred: Tensor,
    epsilon: float = 0.1,
    from_logits: bool = False,
    sparse: bool | None = None,
    axis: int = -1,
) -> Tensor:
    """Per-sample cross-entropy against `(1 - epsilon) * y + epsilon / K`.

    For integer labels the loss is computed as
    `-(1 - epsilon) * log p[y] - epsilon / K * sum_k log p_k` with
    `take_along_axis`: no one-hot target is built.

    Args:
        y_true: one-hot or soft labels shaped like `y_pred`, or integer
            labels without (or with a size-1) class axis.
        y_pred: probabilities, or logits when `from_logits=True`.
        epsilon: smoothing in [0, 1). Defaults to `0.1`.
        from_logits: whether `y_pred` holds logits. Defaults to `False`.
        sparse: `True` for integer labels, `False` for one-hot or soft
            labels, `None` to decide from the shapes and dtype. Defaults to
            `None`.
        axis: the class axis. Defaults to `-1`.

    Returns:
        The loss per sample, `y_pred`'s shape without `axis`.
    """
    epsilon = check_rate("epsilon", epsilon)
    axis = check_int("axis", axis)
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    sparse, axis, has_class_axis = _resolve_sparse(y_true, y_pred, sparse, axis)
    log_p = _log_probs(y_pred, from_logits, axis)
    k = y_pred.shape[axis]
    if k is None:  # unknown number of classes while tracing
        k = ops.cast(ops.shape(y_pred)[axis], log_p.dtype)
    if not sparse:
        target = ops.cast(y_true, log_p.dtype)
        if epsilon:
            target = target * (1.0 - epsilon) + epsilon / k
        return -ops.sum(target * log_p, axis=axis)
    index = ops.cast(y_true, "int32")
    if not has_class_axis:
        index = ops.expand_dims(index, axis)
    picked = ops.squeeze(ops.take_along_axis(log_p, index, axis=axis), axis)
    loss = -(1.0 - epsilon) * picked
    if epsilon:
        loss = loss - (epsilon / k) * ops.sum(log_p, axis=axis)
    return loss


def label_smoothing_loss(y_true: Tensor, y_pred: Tensor,
                         epsilon: float = 0.1) -> Tensor:
    """The reference recipe's form: mean smoothed cross-entropy over the batch."""
    return ops.mean(label_smoothing_cross_entropy(y_true, y_pred, epsilon))


@register
class LabelSmoothingCrossEntropy(keras.losses.Loss):
    """Cross-entropy with label smoothing for one-hot, soft and integer labels.

    The target becomes `(1 - epsilon) * y + epsilon / K`. One-hot labels give
    exactly `keras.losses.CategoricalCrossentropy(label_smoothing=epsilon)`
    and PyTorch's `cross_entropy(..., label_smoothing=epsilon)`; soft labels
    (MixUp, CutMix) are smoothed the same way, unchanged otherwise; integer
    labels are handled without a one-hot target (memory O(batch), not
    O(batch x classes), beyond `y_pred` itself). Probabilities are
    renormalized and clipped to `keras.config.epsilon()` as in Keras.

    Keras casts `y_true` to the loss dtype before `call`, so with
    `sparse=None` integer labels are recognized by their shape: `(batch,)`
    or `(batch, 1)` against `y_pred` of shape `(batch, K)`.

    Args:
        epsilon: smoothing in [0, 1); `None` means `0.1` unless
            `label_smoothing` is given. Defaults to `None`.
        from_logits: whether `y_pred` holds logits. Defaults to `False`.
        sparse: `True` for integer labels, `False` for one-hot or soft
            labels, `None` to detect. Defaults to `None`.
        axis: the class axis. Defaults to `-1`.
        reduction: as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: the loss name. Defaults to
            `"label_smoothing_cross_entropy"`.
        label_smoothing: alias of `epsilon` (Keras's name); giving both
            with different values is an error. Defaults to `None`.
        dtype: the loss computation dtype. Defaults to `None` (floatx).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", loss=LabelSmoothingCrossEntropy(0.1))

    References:
        - Szegedy et al., "Rethinking the Inception architecture for
          computer vision", CVPR 2016.
    """

    def __init__(
        self,
        epsilon: float | None = None,
        from_logits: bool = False,
        sparse: bool | None = None,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "label_smoothing_cross_entropy",
        label_smoothing: float | None = None,
        dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        if label_smoothing is not None:
            label_smoothing = check_rate("label_smoothing", label_smoothing)
            if epsilon is not None and (
                check_rate("epsilon", epsilon) != label_smoothing
            ):
                raise ValueError(
                    "`epsilon` and `label_smoothing` are the same argument "
                    "and were given different values. Received: "
                    f"epsilon={epsilon}, label_smoothing={label_smoothing}"
                )
            epsilon = label_smoothing
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if epsilon is None:
            epsilon = 0.1
        self.epsilon = check_rate("epsilon", epsilon)
        if not isinstance(from_logits, bool):
            raise invalid("from_logits", from_logits, "a bool")
        if sparse is not None and not isinstance(sparse, bool):
            raise invalid("sparse", sparse, "a bool or None")
        self.from_logits = from_logits
        self.sparse = sparse
        self.axis = check_int("axis", axis)

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return label_smoothing_cross_entropy(
            y_true, y_pred, self.epsilon, self.from_logits, self.sparse,
            self.axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "epsilon": self.epsilon,
            "from_logits": self.from_logits,
            "sparse": self.sparse,
            "axis": self.axis,
        })
        return config
