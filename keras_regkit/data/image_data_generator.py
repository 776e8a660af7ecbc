"""The migration from `ImageDataGenerator` to Keras 3 augmentation layers.

`augmentation_from_image_data_generator(**legacy_kwargs)` maps the legacy
arguments onto the layers of a `keras.Sequential` that runs per batch in
the tf.data pipeline or at the front of the model, and refuses, with
advice, the arguments that have no safe layer equivalent.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import keras

from keras_regkit._validation import check_choice
from keras_regkit._validation import check_int
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid
from keras_regkit.data.augmentation import VALUE_RANGE
from keras_regkit.data.augmentation import layer_seeds
from keras_regkit.data.augmentation import let_jax_compile


# ImageDataGenerator arguments with no safe Keras 3 layer equivalent, and
# what to do instead.
_REFUSED = {
    "featurewise_center": "adapt a keras.layers.Normalization() on the "
    "training images (norm.adapt(x_train)) and put it at the model's input",
    "featurewise_std_normalization": "adapt a keras.layers.Normalization() "
    "on the training images and put it at the model's input",
    "zca_whitening": "whiten the arrays once before training (ZCA is a fixed "
    "linear map, not an augmentation)",
    "samplewise_center": "standardize each image in the pipeline, e.g. "
    "dataset.map(lambda x, y: (tf.image.per_image_standardization(x), y))",
    "samplewise_std_normalization": "standardize each image in the pipeline "
    "with tf.image.per_image_standardization",
    "brightness_range": "ImageDataGenerator scales brightness by a factor; "
    "Keras 3's keras.layers.RandomBrightness(factor, value_range=(0, 1)) "
    "shifts it instead: add that layer yourself if a shift is acceptable",
    "preprocessing_function": "apply the function in the tf.data pipeline "
    "(dataset.map) or as a layer before the augmentation",
    "validation_split": "split the arrays yourself and pass the validation "
    "part to fit (or to the builder)",
}
_FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def _shift(name: str, value: float, size: int | None) -> float:
    """A shift range as a fraction of `size` (ints >= 1 are pixels)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or (
        value < 0
    ):
        raise invalid(name, value, "a non-negative number (a fraction < 1, "
                      "or pixels >= 1); lists of choices are not supported")
    if value < 1:
        return float(value)
    if size is None:
        raise invalid(name, value, "a fraction < 1 unless `image_size` is "
                      "given (shifts >= 1 are pixels)")
    return float(value) / size


def augmentation_from_image_data_generator(
    image_size: int | Sequence[int] | None = None, seed: int | None = None,
    **kwargs: Any,
) -> keras.Sequential | None:
    """Maps legacy `ImageDataGenerator` arguments onto Keras 3 layers.

    Supported: `rotation_range` (degrees), `width_shift_range`,
    `height_shift_range` (fractions, or pixels when >= 1 and `image_size`
    is given), `zoom_range` (float `z` for [1 - z, 1 + z], or `[lo, hi]`,
    drawn per axis), `shear_range` (degrees, as a horizontal shear of
    sin(angle), about the top edge where ImageDataGenerator shears about
    the centre),
    `horizontal_flip`, `vertical_flip`, `fill_mode` (default "nearest", as
    in ImageDataGenerator), `cval`, `interpolation_order` (0 or 1),
    `channel_shift_range` (in 0-255 pixel units, as a brightness shift of
    the [0, 1] images), `rescale` (only 1/255, which `make_dataset`'s
    `normalize=True` already does) and `data_format`. Arguments with no
    faithful equivalent (featurewise/samplewise statistics, ZCA,
    `brightness_range`, `preprocessing_function`, `validation_split`) raise
    `ValueError` saying what to do instead. ImageDataGenerator composes the
    geometric changes into one affine warp; here each layer resamples in
    turn, which blurs slightly more.

    Args:
        image_size: image size in pixels, `side` or `(height, width)`,
            needed only for shifts given in pixels. Defaults to `None`.
        seed: base seed; layer `i` gets `seed + i`. Defaults to `None`.
        **kwargs: the `ImageDataGenerator` arguments.

    Returns:
        A `keras.Sequential` for float32 images in [0, 1], or `None` when no
        argument asks for augmentation.

    Example:

    ```python
    augment = augmentation_from_image_data_generator(
        rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
        horizontal_flip=True)
    ```
    """
    seeds = layer_seeds(check_seed("seed", seed))
    height_px = width_px = None
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        height_px = check_int("image_size", image_size[0], 1)
        width_px = check_int("image_size", image_size[1], 1)
    elif image_size is not None:
        height_px = width_px = check_int("image_size", image_size, 1)
    args = dict(kwargs)
    for name, advice in _REFUSED.items():
        if args.pop(name, None):
            raise ValueError(
                f"The ImageDataGenerator argument `{name}` has no Keras 3 "
                f"augmentation-layer equivalent here. Instead: {advice}."
            )
    fill_mode = args.pop("fill_mode", "nearest")
    check_choice("fill_mode", fill_mode, _FILL_MODES)
    cval = float(args.pop("cval", 0.0))
    order = args.pop("interpolation_order", 1)
    check_choice("interpolation_order", order, (0, 1))
    interpolation = ("nearest", "bilinear")[order]
    data_format = args.pop("data_format", None)
    check_choice("data_format", data_format,
                 (None, "channels_last", "channels_first"))
    rescale = args.pop("rescale", None)
    if rescale not in (None, 0, 1) and not math.isclose(rescale, 1 / 255):
        raise invalid("rescale", rescale, "None or 1/255: make_dataset("
                      "normalize=True) maps uint8 images to [0, 1]; apply "
                      "other scalings to the arrays or as a Rescaling layer")
    args.pop("zca_epsilon", None)
    args.pop("dtype", None)
    geometry = dict(fill_mode=fill_mode, fill_value=cval,
                    interpolation=interpolation, data_format=data_format)
    L, layers = keras.layers, []
    rotation = args.pop("rotation_range", 0) or 0
    if rotation:
        layers.append(L.RandomRotation(float(rotation) / 360.0,
                                       seed=next(seeds), **geometry))
    shear = args.pop("shear_range", 0) or 0
    if shear:
        if not 0 < shear <= 90:
            raise invalid("shear_range", shear, "degrees in [0, 90]")
        layers.append(L.RandomShear(
            x_factor=math.sin(math.radians(shear)), seed=next(seeds),
            **geometry))
    # A float or a [lower, upper] pair, as the user gave it: checked below.
    zoom: Any = args.pop("zoom_range", 0) or 0
    if isinstance(zoom, numbers.Real):
        zoom = (1 - zoom, 1 + zoom)
    zoom = tuple(zoom)
    if zoom != (1, 1):
        # ImageDataGenerator zooms by z (> 1: out); RandomZoom by 1 + factor.
        if len(zoom) != 2 or not 0 < zoom[0] <= zoom[1]:
            raise invalid("zoom_range", zoom, "a float in [0, 1) or "
                          "[lower, upper] with 0 < lower <= upper")
        factor = (round(zoom[0] - 1.0, 12), round(zoom[1] - 1.0, 12))
        layers.append(L.RandomZoom(factor, factor, seed=next(seeds),
                                   **geometry))
    width = _shift("width_shift_range", args.pop("width_shift_range", 0),
                   width_px)
    height = _shift("height_shift_range", args.pop("height_shift_range", 0),
                    height_px)
    if width or height:
        layers.append(L.RandomTranslation(height, width, seed=next(seeds),
                                          **geometry))
    horizontal = bool(args.pop("horizontal_flip", False))
    vertical = bool(args.pop("vertical_flip", False))
    if horizontal or vertical:
        mode = ("horizontal_and_vertical" if horizontal and vertical else
                "horizontal" if horizontal else "vertical")
        layers.append(L.RandomFlip(mode, seed=next(seeds),
                                   data_format=data_format))
    channel_shift = args.pop("channel_shift_range", 0) or 0
    if channel_shift:
        layers.append(L.RandomBrightness(
            min(float(channel_shift) / 255.0, 1.0), value_range=VALUE_RANGE,
            seed=next(seeds)))
    if args:
        name = sorted(args)[0]
        raise ValueError(
            f"Unknown or unsupported ImageDataGenerator argument `{name}` "
            f"(received {name}={args[name]!r}). Supported: rotation_range, "
            "width_shift_range, height_shift_range, zoom_range, shear_range, "
            "horizontal_flip, vertical_flip, fill_mode, cval, "
            "interpolation_order, channel_shift_range, rescale, data_format."
        )
    if not layers:
        return None
    augmentation = keras.Sequential(layers)
    let_jax_compile(augmentation)  # JAX compiles the layers; Keras says not
    return augmentation
