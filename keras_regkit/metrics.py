"""Metrics that accept integer or one-hot labels alike."""

import keras

from keras_regkit._registry import register
from keras_regkit._validation import check_int


def _is_sparse(y_true, y_pred):
    """Whether `y_true` holds class indices rather than one-hot rows."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank - 1:
        return True
    return true_rank == pred_rank and y_true.shape[-1] == 1 != y_pred.shape[-1]


def top_k_accuracy(y_true, y_pred, k=5):
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

    def __init__(self, k=5, name=None, dtype=None):
        self.k = check_int("k", k, 1)
        super().__init__(
            top_k_accuracy, name=name or f"top{self.k}_accuracy", dtype=dtype,
            k=self.k,
        )
        self._direction = "up"

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
