"""The one conversion of image arrays to float32 (NumPy, any backend)."""

import numpy as np
import numpy.typing as npt


def to_float_images(x: npt.ArrayLike) -> np.ndarray:
    """uint8 images scaled to float32 in [0, 1]; other arrays cast to float32.

    The tf.data pipeline does the same inside the graph
    (`keras_regkit.data.pipeline`).

    Example:

    >>> to_float_images(np.array([0, 51, 255], np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype("float32") / np.float32(255.0)
    return x.astype("float32", copy=False)
