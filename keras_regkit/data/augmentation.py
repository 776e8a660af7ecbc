"""Image augmentation policies.

Every policy is a `keras.Sequential` of Keras 3 preprocessing layers working
on float32 images in [0, 1]. The same object can run per batch inside the
tf.data pipeline (`make_dataset(..., augmentation=...)`) or at the front of
the model (`augmentation_model_layers`); the random layers are the identity
at inference either way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import keras

from keras_regkit._choices import AUGMENTATION_POLICIES
from keras_regkit._walk import walk_layers
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid

VALUE_RANGE = (0.0, 1.0)
# The fill of erased patches: grey at CIFAR-10's mean brightness (a scalar:
# Keras 3.15's RandomErasing fails on JAX with a per-channel tuple).
_ERASE_FILL = 0.47


# Keras's affine augmentation layers set `supports_jit = False` because
# TensorFlow's XLA has no kernel for their image transform. On JAX they are
# jax.numpy code that compiles (the compiled layer draws the same transform
# as the eager one from the same seed state), but the flag alone makes JAX's
# trainer run the whole training step eagerly, several times slower.
# RandomCrop and RandomPerspective are left alone: RandomCrop slices with
# traced offsets, which JAX cannot compile.
_JAX_COMPILABLE = (keras.layers.RandomTranslation, keras.layers.RandomRotation,
                   keras.layers.RandomZoom, keras.layers.RandomShear)


def let_jax_compile(layer: keras.layers.Layer) -> list[str]:
    """Lets JAX compile a training step that holds Keras's affine augmentation.

    Keras 3 marks `RandomTranslation`, `RandomRotation`, `RandomZoom` and
    `RandomShear` as not jit-compatible, for TensorFlow's XLA; on JAX a
    model holding one then trains eagerly, op by op. On JAX this marks
    every such layer in `layer` (a layer or a model, nested layers
    included) as compilable; on TensorFlow and PyTorch it changes nothing.
    The augmentation policies of `get_augmentation` come marked already.
    Call it before `compile`. The mark is not saved with the model: call
    it again on a model loaded from a file before training it on JAX.

    Args:
        layer: a Keras layer or model.

    Returns:
        The names of the layers it marked (empty off JAX).

    Example:

    ```python
    x = keras.layers.RandomRotation(0.1)(inputs)
    ...
    model = keras.Model(inputs, outputs)
    let_jax_compile(model)
    model.compile(...)   # on JAX: jit_compile resolves to True
    ```
    """
    if not isinstance(layer, keras.layers.Layer):
        raise invalid("layer", layer, "a Keras layer or model")
    if keras.backend.backend() != "jax":
        return []
    marked = []
    for inner in walk_layers(layer):
        if isinstance(inner, _JAX_COMPILABLE) and not inner.supports_jit:
            inner.supports_jit = True
            marked.append(inner.name)
    return marked


def layer_seeds(seed: int | None) -> Iterator[int | None]:
    """One seed per layer: `seed`, `seed + 1`, ... (None stays None)."""
    return itertools.repeat(None) if seed is None else itertools.count(seed)


def _policy_layers(name: str,
                   seeds: Iterator[int | None]) -> list[keras.layers.Layer]:
    L = keras.layers
    flip = [L.RandomFlip("horizontal", seed=next(seeds))]
    if name == "flip":
        return flip
    if name == "flip_translate":
        # airbench: flip + translation by up to 4 px, reflected borders;
        # nearest interpolation keeps the shifts to whole pixels.
        return flip + [L.RandomTranslation(
            4 / 32, 4 / 32, fill_mode="reflect", interpolation="nearest",
            seed=next(seeds))]
    if name in ("flip_translate2", "alternating_flip_translate2"):
        return flip + [L.RandomTranslation(
            2 / 32, 2 / 32, fill_mode="reflect", interpolation="nearest",
            seed=next(seeds))]
    if name == "light":
        return flip + [L.RandomTranslation(0.1, 0.1, seed=next(seeds))]
    big = name == "strong"
    layers = flip + [
        L.RandomRotation(0.15 if big else 0.1, seed=next(seeds)),
        L.RandomZoom(0.2 if big else 0.1, seed=next(seeds)),
        L.RandomTranslation(0.15 if big else 0.1, 0.15 if big else 0.1,
                            seed=next(seeds)),
        L.RandomContrast(0.2 if big else 0.1, value_range=VALUE_RANGE,
                         seed=next(seeds)),
    ]
    if big:
        layers.append(L.RandomErasing(
            factor=(0.5, 0.5), fill_value=_ERASE_FILL,
            value_range=VALUE_RANGE, seed=next(seeds)))
    return layers


def get_augmentation(name: str,
                     seed: int | None = None) -> keras.Sequential | None:
    """Returns a named augmentation policy as one Keras layer.

    Policies, for float32 images in [0, 1]:

    - `"none"`: no augmentation (returns `None`).
    - `"flip"`: random horizontal flip.
    - `"flip_translate"`: flip, then a shift of up to 4 pixels each way with
      reflected borders (the airbench recipe for CIFAR-10).
    - `"light"`: flip and translation by up to 10%.
    - `"standard"`: the reference recipe's five layers: horizontal flip, rotation 0.1
      (of a full turn), zoom 0.1, translation 0.1 x 0.1, contrast 0.1.
    - `"strong"`: flip, rotation 0.15, zoom 0.2, translation 0.15,
      contrast 0.2, and random erasing of one patch in half the images
      (filled with grey at the CIFAR-10 mean brightness).
    - `"flip_translate2"`: flip, then a shift of up to 2 pixels each way
      with reflected borders (the airbench `fast` recipe).
    - `"alternating_flip_translate2"`: in `make_dataset` with array inputs,
      alternating flips (each image flipped on every other epoch, see
      `alternating_flip_mask`) and the 2-pixel shift. As a layer (returned
      here, or placed in a model) it cannot know which image it sees, so
      the flip is random: the same layers as `"flip_translate2"`.

    Args:
        name: one of `AUGMENTATION_POLICIES`.
        seed: base seed; layer `i` gets `seed + i`. Defaults to `None`.

    Returns:
        A `keras.Sequential` of preprocessing layers, or `None` for "none".

    Example:

    ```python
    augment = get_augmentation("standard", seed=0)
    images = augment(images, training=True)
    ```

    References:
        - Zhong et al., "Random Erasing Data Augmentation", AAAI 2020.
        - Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU"
          (airbench), 2024.
    """
    check_choice("name", name, AUGMENTATION_POLICIES)
    seed = check_seed("seed", seed)
    if name == "none":
        return None
    policy = keras.Sequential(_policy_layers(name, layer_seeds(seed)))
    let_jax_compile(policy)
    return policy


def reference_augmentation(seed: int | None = None) -> keras.Sequential:
    """The reference recipe's augmentation layer (the "standard" policy).

    What the reference recipe's `get_data_augmentation()` returns.

    Args:
        seed: base seed of the five layers. Defaults to `None`.

    Returns:
        A `keras.Sequential`: RandomFlip("horizontal"), RandomRotation(0.1),
        RandomZoom(0.1), RandomTranslation(0.1, 0.1), RandomContrast(0.1).
    """
    return get_augmentation("standard", seed=seed)


# The name this function had before 0.1.0's layout redesign.
seed_augmentation = reference_augmentation


def augmentation_model_layers(
    augmentation: str | keras.layers.Layer | None, seed: int | None = None,
) -> list[keras.layers.Layer]:
    """The layers to put at the front of a model instead of in the pipeline.

    Model placement runs the augmentation on the accelerator, inside the
    compiled step; pipeline placement (`make_dataset(augmentation=...)`)
    runs it on the CPU in parallel with training. Both draw from the same
    distribution, and the layers are the identity at inference.

    Args:
        augmentation: a policy name, a `keras.Sequential`/`keras.layers.
            Pipeline` (its layers are returned), any other layer (returned
            alone) or `None`.
        seed: base seed when `augmentation` is a name. Defaults to `None`.

    Returns:
        A list of layers, empty for `None` or "none".

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for layer in augmentation_model_layers("standard", seed=0):
        x = layer(x)
    ```
    """
    if isinstance(augmentation, str):
        augmentation = get_augmentation(augmentation, seed=seed)
    if augmentation is None:
        return []
    if isinstance(augmentation, (keras.Sequential, keras.layers.Pipeline)):
        return list(augmentation.layers)
    if isinstance(augmentation, keras.layers.Layer):
        return [augmentation]
    raise invalid("augmentation", augmentation,
                  "a policy name, a Keras layer or None")
