"""Input checks shared by the two input paths (tf.data and ArrayLoader)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keras_regkit._validation import check_choice
from keras_regkit._validation import check_int
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid


def check_images(x: npt.ArrayLike, normalize: bool,
                 spatial: bool) -> np.ndarray:
    """Returns `x` as an array of uint8 or finite float images, or raises."""
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise invalid("x", f"<array of shape {x.shape}>", "a non-empty array")
    if spatial and x.ndim != 4:
        raise invalid("x", f"<array of shape {x.shape}>",
                      "images of shape (N, height, width, channels) when "
                      "augmenting or mixing")
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise invalid("x", f"<array of dtype {x.dtype}>",
                      "uint8 images or float images")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise invalid("x", "<array with NaN or inf>", "finite values")
        if normalize and (x.min() < 0.0 or x.max() > 1.0):
            raise invalid("x", f"<float array in [{x.min():g}, {x.max():g}]>",
                          "float images in [0, 1] (or uint8 images) when "
                          "normalize=True")
    return x


def check_labels(y: npt.ArrayLike | None, n: int,
                 num_classes: int | None) -> np.ndarray:
    """Returns labels: one-hot float32 (num_classes given) or int32 (N,).

    Missing labels (`None`) are refused like any other wrong count.
    """
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n:
        raise invalid("y", f"<{y.size} labels>", f"one label per image ({n})")
    if y.dtype.kind not in "iuf" or y.ndim > 2:
        raise invalid("y", f"<array of shape {y.shape}, dtype {y.dtype}>",
                      "integer labels (N,) or (N, 1), or one-hot labels "
                      "(N, K)")
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or soft labels
        y = y.astype(np.float32)
        rows_ok = np.all(y >= 0) and np.allclose(y.sum(axis=1), 1.0, atol=1e-3)
        if not np.isfinite(y).all() or not rows_ok:
            raise invalid("y", "<label rows>", "one-hot or soft label rows: "
                          "non-negative and summing to 1")
        if num_classes is not None and y.shape[1] != num_classes:
            raise invalid("num_classes", num_classes,
                          f"{y.shape[1]}, the width of the one-hot labels `y`")
        return y
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise invalid("y", "<non-integer labels>", "integer class indices")
    high = "inf" if num_classes is None else num_classes - 1
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        raise invalid("y", f"<labels in [{y.min():g}, {y.max():g}]>",
                      f"class indices in [0, {high}]")
    y = y.astype(np.int32)
    if num_classes is None:
        return y
    return np.eye(num_classes, dtype=np.float32)[y]


def check_channel_stats(name: str, value: npt.ArrayLike | None,
                        channels: int, positive: bool) -> np.ndarray | None:
    """Per-channel mean or std as float32 `(channels,)`, or None."""
    if value is None:
        return None
    values = np.asarray(value, dtype=np.float64).reshape(-1)
    if values.size not in (1, channels) or not np.isfinite(values).all() or (
            positive and np.any(values <= 0)):
        raise invalid(name, value, f"a {'positive ' if positive else ''}"
                      f"float or {channels} per-channel floats")
    return np.broadcast_to(values, (channels,)).astype(np.float32)


def check_loader_args(
    batch_size: int, training: bool, augmentation: str,
    num_classes: int | None, seed: int | None, normalize: bool,
    augmentations: Sequence[str],
) -> tuple[int, bool, str, int | None, int, bool]:
    """The array loaders' shared arguments, checked; a `None` seed drawn.

    Returns `(batch_size, training, augmentation, num_classes, seed,
    normalize)`.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(training, (bool, np.bool_)):
        raise invalid("training", training, "True or False")
    augmentation = check_choice("augmentation", augmentation, augmentations)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, 2)
    seed = check_seed("seed", seed)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if not isinstance(normalize, (bool, np.bool_)):
        raise invalid("normalize", normalize, "True or False")
    return (batch_size, bool(training), augmentation, num_classes, seed,
            bool(normalize))
