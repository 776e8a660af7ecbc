"""Class probabilities, accuracy and loss of a trained model.

One evaluation behind `ProductionModelBuilder.predict` / `.evaluate`,
`compare_ablations` and `regkit evaluate`: images are scaled to [0, 1],
predictions are optionally averaged over test-time views (`tta.py`), and
the loss is the cross-entropy of those averaged probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from keras_regkit._images import to_float_images
from keras_regkit._validation import invalid
from keras_regkit.training.tta import tta_predict

if TYPE_CHECKING:
    import keras


def predict_probabilities(
    model: keras.Model, x: npt.ArrayLike, batch_size: int = 256,
    tta: bool | str = False,
) -> npt.NDArray[np.float32]:
    """Class probabilities, optionally averaged over test-time views.

    Args:
        model: a trained model that outputs class probabilities.
        x: images (uint8, or float in [0, 1]).
        batch_size: prediction batch size. Defaults to `256`.
        tta: `False`, `True` / `"flip"` (original + mirror) or
            `"flip_translate"` (also shifted views). Defaults to `False`.

    Returns:
        A float32 array of shape `(len(x), num_classes)`.
    """
    return tta_predict(model, to_float_images(x), batch_size=batch_size,
                       tta=tta)


def evaluate_model(model: keras.Model, x: np.ndarray, y: np.ndarray,
                   batch_size: int = 256,
                   tta: bool | str = False) -> dict[str, float]:
    """Accuracy and loss of `model` on `(x, y)`, optionally with TTA.

    Args:
        model: a trained model that outputs class probabilities.
        x: images (uint8, or float in [0, 1]).
        y: integer labels (shape `(N,)` or `(N, 1)`) or one-hot labels.
        batch_size: prediction batch size. Defaults to `256`.
        tta: test-time views, as in `predict_probabilities`. Defaults to
            `False`.

    Returns:
        A dict with `accuracy` and `loss` (cross-entropy of the averaged
        probabilities, without label smoothing).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...     keras.layers.Dense(10, activation="softmax")])
    >>> x_val = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> y_val = np.array([0, 1, 2, 3])
    >>> result = evaluate_model(model, x_val, y_val, tta="flip")
    >>> sorted(result)
    ['accuracy', 'loss']
    """
    if len(y) != len(x):
        raise invalid("y", f"<{len(y)} labels>",
                      f"one label per image ({len(x)})")
    probs = predict_probabilities(model, x, batch_size=batch_size, tta=tta)
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[-1] == probs.shape[-1]:
        labels = labels.argmax(-1)
    labels = labels.reshape(-1).astype("int64")
    picked = probs[np.arange(len(labels)), labels]
    return {
        "accuracy": float((probs.argmax(-1) == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
    }
