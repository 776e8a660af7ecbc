"""Test-time augmentation: average predictions over flipped/shifted views."""

import keras
import numpy as np

from keras_regkit._choices import TTA_MODES
from keras_regkit._validation import invalid



def _shift(x, dy, dx):
    """Shifts a batch of NHWC images by (dy, dx) pixels with edge padding."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def tta_views(x, tta):
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


def tta_predict(model, x, batch_size=256, tta=True):
    """Mean class probabilities of `model` over the TTA views of `x`."""
    views = tta_views(np.asarray(x), tta)
    total = None
    for view in views:
        probs = model.predict(view, batch_size=batch_size, verbose=0)
        probs = keras.ops.convert_to_numpy(probs).astype("float64")
        total = probs if total is None else total + probs
    return (total / len(views)).astype("float32")
