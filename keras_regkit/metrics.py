"""Metrics that accept integer or one-hot labels alike.

`TopKAccuracy`, and the expected calibration error (ECE) as a function and
as a stateful metric. A classifier is calibrated when, among the
predictions made with confidence p, a fraction p is right. The ECE bins
predictions by confidence (the top probability) into `n_bins` equal
intervals `(lo, hi]` of [0, 1] and averages |accuracy - confidence| over
the bins, weighted by their share of the predictions:
`ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)| = sum_b |correct_b -
confidence_b| / N` with `correct_b` and `confidence_b` sums over bin b.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_int

if TYPE_CHECKING:
    from typing_extensions import Self


def _is_sparse(y_true: Tensor, y_pred: Tensor) -> bool:
    """Whether `y_true` holds class indices rather than one-hot rows."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank - 1:
        return True
    return true_rank == pred_rank and y_true.shape[-1] == 1 != y_pred.shape[-1]


def top_k_accuracy(y_true: Tensor, y_pred: Tensor, k: int = 5) -> Tensor:
    """Top-k accuracy for integer or one-hot (or soft) labels."""
    y_pred = keras.ops.cast(y_pred, "float32")  # in_top_k needs float32
    if _is_sparse(y_true, y_pred):
        return keras.metrics.sparse_top_k_categorical_accuracy(y_true, y_pred, k)
    return keras.metrics.top_k_categorical_accuracy(y_true, y_pred, k)


@register
class TopKAccuracy(keras.metrics.MeanMetricWrapper):
    """Top-k accuracy that works with integer and one-hot labels.

    Keras has one metric for each label format; this one picks by the
    labels' shape, so a model compiled once trains on either.

    Args:
        k: how many top predictions count as a hit. Defaults to `5`.
        name: metric name. Defaults to `"top5_accuracy"` for k=5.
        dtype: metric dtype. Defaults to `None`.
    """

    def __init__(self, k: int = 5, name: str | None = None,
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        self.k = check_int("k", k, 1)
        super().__init__(
            top_k_accuracy, name=name or f"top{self.k}_accuracy", dtype=dtype,
            k=self.k,
        )
        self._direction = "up"

    def get_config(self) -> dict[str, Any]:
        return {"k": self.k, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)


def calibration_bins(
    y_true: Tensor,
    y_prob: Tensor,
    n_bins: int = 15,
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin weight, confidence sum and correct sum (tensors, `keras.ops`).

    Args:
        y_true: integer labels `(N,)` / `(N, 1)`, or one-hot (or soft)
            labels `(N, K)` (the argmax is the class).
        y_prob: predicted probabilities `(N, K)`.
        n_bins: number of equal-width confidence bins. Defaults to `15`.
        sample_weight: optional weights `(N,)`. Defaults to `None`.

    Returns:
        `(counts, confidence_sums, correct_sums)`, each of shape
        `(n_bins,)`, float32.
    """
    y_prob = ops.cast(ops.convert_to_tensor(y_prob), "float32")
    y_true = ops.convert_to_tensor(y_true)
    if _is_sparse(y_true, y_prob):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    else:
        labels = ops.cast(ops.argmax(y_true, axis=-1), "int32")
    confidence = ops.max(y_prob, axis=-1)
    predicted = ops.cast(ops.argmax(y_prob, axis=-1), "int32")
    correct = ops.cast(ops.equal(predicted, labels), "float32")
    index = ops.cast(ops.ceil(confidence * n_bins), "int32") - 1
    index = ops.clip(index, 0, n_bins - 1)
    one_hot = ops.one_hot(index, n_bins, dtype="float32")
    if sample_weight is not None:
        weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        one_hot = one_hot * weight
    counts = ops.sum(one_hot, axis=0)
    confidence_sums = ops.sum(one_hot * confidence[:, None], axis=0)
    correct_sums = ops.sum(one_hot * correct[:, None], axis=0)
    return counts, confidence_sums, correct_sums


def _ece_from_bins(counts: Tensor, confidence_sums: Tensor,
                   correct_sums: Tensor) -> Tensor:
    total = ops.sum(counts)
    gap = ops.sum(ops.abs(correct_sums - confidence_sums))
    return ops.where(total > 0, gap / ops.maximum(total, 1e-12), 0.0)


def expected_calibration_error(
    y_true: Tensor,
    probs: Tensor,
    n_bins: int = 15,
    sample_weight: Tensor | None = None,
) -> float:
    """Expected calibration error of predicted probabilities.

    Args:
        y_true: integer labels `(N,)` or one-hot labels `(N, K)`.
        probs: predicted probabilities `(N, K)`.
        n_bins: number of equal-width confidence bins. Defaults to `15`.
        sample_weight: optional per-sample weights. Defaults to `None`.

    Returns:
        The ECE, a float in [0, 1].

    Example:

    >>> ece = expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]],
    ...                                  n_bins=10)
    >>> round(ece, 4)  # (|1 - 0.9| + |0 - 0.8|) / 2
    0.45

    References:
        - [Naeini et al., 2015](https://ojs.aaai.org/index.php/AAAI/article/view/9602)
        - [Guo et al., 2017](https://arxiv.org/abs/1706.04599)
    """
    n_bins = check_int("n_bins", n_bins, 1)
    if len(y_true) != len(probs):
        raise ValueError(
            "Invalid value received for argument `y_true`. Expected one label "
            f"per row of `probs` ({len(probs)}). Received: {len(y_true)} "
            "labels")
    bins = calibration_bins(y_true, probs, n_bins, sample_weight)
    return float(ops.convert_to_numpy(_ece_from_bins(*bins)))


@register
class ExpectedCalibrationError(keras.metrics.Metric):
    """Expected calibration error as a stateful metric.

    Accumulates per-bin counts, confidence sums and correct sums over
    batches, so the result over an epoch is exactly
    `expected_calibration_error` on all of its predictions. Works with
    integer or one-hot labels; lower is better.

    Args:
        n_bins: number of equal-width confidence bins. Defaults to `15`.
        name: metric name. Defaults to `"ece"`.
        dtype: metric dtype. Defaults to `None`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy",
    ...               metrics=["accuracy", ExpectedCalibrationError()])

    References:
        - [Guo et al., 2017](https://arxiv.org/abs/1706.04599)
    """

    def __init__(self, n_bins: int = 15, name: str = "ece",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        self.n_bins = check_int("n_bins", n_bins, 1)
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"
        self.counts, self.confidence_sums, self.correct_sums = (
            self.add_variable(shape=(self.n_bins,), initializer="zeros",
                              name=variable, dtype="float32")
            for variable in ("counts", "confidence_sums", "correct_sums")
        )

    def update_state(self, y_true: Tensor, y_pred: Tensor,
                     sample_weight: Tensor | None = None) -> None:
        bins = calibration_bins(y_true, y_pred, self.n_bins, sample_weight)
        for variable, value in zip(
                (self.counts, self.confidence_sums, self.correct_sums), bins):
            variable.assign_add(value)

    def result(self) -> Tensor:
        return _ece_from_bins(self.counts, self.confidence_sums,
                              self.correct_sums)

    def reset_state(self) -> None:
        for variable in (self.counts, self.confidence_sums,
                         self.correct_sums):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"n_bins": self.n_bins, "name": self.name, "dtype": self.dtype}
