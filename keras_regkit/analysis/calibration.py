"""Calibration: expected calibration error and the reliability diagram.

A classifier is calibrated when, among the predictions made with
confidence p, a fraction p is right. The expected calibration error (ECE)
bins predictions by confidence (the top probability) into `n_bins` equal
intervals `(lo, hi]` of [0, 1] and averages |accuracy - confidence| over
the bins, weighted by their share of the predictions:
`ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)| = sum_b |correct_b -
confidence_b| / N` with `correct_b` and `confidence_b` sums over bin b.
"""

import keras
import numpy as np
from keras import ops

from keras_regkit._registry import register
from keras_regkit._validation import check_int


def _sparse(y_true, y_prob):
    true_rank, prob_rank = len(y_true.shape), len(y_prob.shape)
    return true_rank == prob_rank - 1 or (
        true_rank == prob_rank and y_true.shape[-1] == 1 != y_prob.shape[-1])


def calibration_bins(y_true, y_prob, n_bins=15, sample_weight=None):
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
    if _sparse(y_true, y_prob):
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


def _ece_from_bins(counts, confidence_sums, correct_sums):
    total = ops.sum(counts)
    gap = ops.sum(ops.abs(correct_sums - confidence_sums))
    return ops.where(total > 0, gap / ops.maximum(total, 1e-12), 0.0)


def expected_calibration_error(y_true, probs, n_bins=15, sample_weight=None):
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

    >>> model.compile("adam", "sparse_categorical_crossentropy",
    ...               metrics=["accuracy", ExpectedCalibrationError()])

    References:
        - [Guo et al., 2017](https://arxiv.org/abs/1706.04599)
    """

    def __init__(self, n_bins=15, name="ece", dtype=None):
        self.n_bins = check_int("n_bins", n_bins, 1)
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"
        self.counts, self.confidence_sums, self.correct_sums = (
            self.add_variable(shape=(self.n_bins,), initializer="zeros",
                              name=variable, dtype="float32")
            for variable in ("counts", "confidence_sums", "correct_sums")
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        bins = calibration_bins(y_true, y_pred, self.n_bins, sample_weight)
        for variable, value in zip(
                (self.counts, self.confidence_sums, self.correct_sums), bins):
            variable.assign_add(value)

    def result(self):
        return _ece_from_bins(self.counts, self.confidence_sums,
                              self.correct_sums)

    def reset_state(self):
        for variable in (self.counts, self.confidence_sums,
                         self.correct_sums):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self):
        return {"n_bins": self.n_bins, "name": self.name, "dtype": self.dtype}


def plot_reliability_diagram(y_true, probs, n_bins=15, path=None,
                             title=None):
    """Reliability diagram: accuracy against confidence per bin.

    Bars show each bin's accuracy, the diagonal is perfect calibration,
    red hatching the gap to it; a lower panel shows how many predictions
    fall in each bin. The ECE is in the title.

    Args:
        y_true: integer or one-hot labels.
        probs: predicted probabilities `(N, K)`.
        n_bins: number of confidence bins. Defaults to `15`.
        path: PNG file to write (600 x 700 pixels). Defaults to `None`.
        title: figure title. Defaults to `None` ("Reliability diagram").

    Returns:
        The matplotlib Figure.
    """
    from keras_regkit.analysis.plots import new_figure, save_figure

    n_bins = check_int("n_bins", n_bins, 1)
    counts, conf, correct = (np.asarray(ops.convert_to_numpy(t), "float64")
                             for t in calibration_bins(y_true, probs, n_bins))
    ece = expected_calibration_error(y_true, probs, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1.0 / n_bins
    filled = counts > 0
    accuracy = np.where(filled, correct / np.maximum(counts, 1), 0.0)
    mean_conf = np.where(filled, conf / np.maximum(counts, 1), centers)
    fig = new_figure(figsize=(6, 7))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.bar(centers, accuracy, width=width, edgecolor="black",
            label="accuracy")
    top.bar(centers[filled], (mean_conf - accuracy)[filled], width=width,
            bottom=accuracy[filled], color="none", edgecolor="red",
            hatch="//", label="gap to confidence")
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left")
    top.set_title(f"{title or 'Reliability diagram'} (ECE {ece:.3f})")
    bottom.bar(centers, counts, width=width, edgecolor="black")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
