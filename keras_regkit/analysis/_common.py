"""Small helpers shared by the analysis modules (NumPy in, NumPy out)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from keras_regkit._validation import invalid

if TYPE_CHECKING:
    import keras

_EPS = 1e-7


def integer_labels(y: npt.ArrayLike | None,
                   num_classes: int | None = None) -> npt.NDArray[np.int64]:
    """Returns integer class labels from integer or one-hot (soft) labels.

    Args:
        y: labels of shape `(N,)`, `(N, 1)` or `(N, K)` (one-hot or soft;
            the argmax is taken).
        num_classes: number of classes `K` of the predictions, used to tell
            `(N, 1)` integer columns from one-hot rows. Defaults to `None`.

    Returns:
        An int64 array of shape `(N,)`. Missing labels (`None`) raise.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1 and (
        num_classes is None or y.shape[1] == num_classes
    ):
        return y.argmax(axis=1).astype("int64")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise invalid("y", f"array of shape {y.shape}",
                      "integer labels (N,) or one-hot labels (N, classes)")
    return y.astype("int64")


def as_probabilities(outputs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Returns class probabilities, applying softmax to logits.

    Outputs that are already probability rows (all in [0, 1], rows summing
    to 1 within 1e-3) are returned unchanged; anything else is treated as
    logits.
    """
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim != 2:
        raise invalid("predictions", f"array of shape {outputs.shape}",
                      "a (N, classes) array of probabilities or logits")
    if (outputs.min() >= 0.0 and outputs.max() <= 1.0
            and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)):
        return outputs
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _batches(data: Iterable[Any]) -> Iterator[Any]:
    if hasattr(data, "as_numpy_iterator"):  # a tf.data.Dataset
        return data.as_numpy_iterator()
    return iter(data)


def predict_with_labels(
    model: keras.Model, x: np.ndarray | Iterable[Any],
    y: npt.ArrayLike | None = None, batch_size: int = 256,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Predicts in inference mode and returns `(probabilities, int labels)`.

    Args:
        model: a Keras model with one (N, classes) output.
        x: an array of inputs, or a dataset (`tf.data.Dataset` or any
            iterable) of `(inputs, labels)` batches when `y` is None.
        y: integer or one-hot labels for an array `x`. Defaults to `None`.
        batch_size: prediction batch size for arrays. Defaults to `256`.
    """
    if y is not None:
        predicted = as_probabilities(model.predict(x, batch_size=batch_size,
                                                   verbose=0))
        return predicted, integer_labels(y, predicted.shape[1])
    if isinstance(x, np.ndarray):
        raise invalid("y", None, "labels when x is an array")
    probs: list[npt.NDArray[np.float64]] = []
    labels: list[npt.NDArray[np.int64]] = []
    for batch in _batches(x):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise invalid("x", type(x).__name__,
                          "a dataset of (inputs, labels) batches")
        xb, yb = batch[0], batch[1]
        out = as_probabilities(model.predict_on_batch(xb))
        probs.append(out)
        labels.append(integer_labels(np.asarray(yb), out.shape[1]))
    if not probs:
        raise invalid("x", type(x).__name__, "a non-empty dataset")
    return np.concatenate(probs), np.concatenate(labels)


def loss_and_accuracy(probs: np.ndarray,
                      labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy (no smoothing) and accuracy of probability rows."""
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, _EPS, 1.0)).mean())
    return loss, float((probs.argmax(axis=1) == labels).mean())
