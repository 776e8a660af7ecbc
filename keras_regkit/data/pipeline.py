"""The tf.data input pipeline: shuffle, batch, augment, mix, prefetch.

Augmentation runs per batch inside `Dataset.map` on every epoch (never once
over the whole array before `fit`), in parallel with training.
"""

from __future__ import annotations

import collections.abc
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import tensorflow as tf

import keras

from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid
from keras_regkit.data._checks import check_images
from keras_regkit.data._checks import check_labels
from keras_regkit.data.augmentation import augmentation_model_layers
from keras_regkit.data.augmentation import get_augmentation
from keras_regkit.data.flips import tf_alternating_flip
from keras_regkit.data.mixing import mix_batch

MIX_KEYS = ("mixup_alpha", "cutmix_alpha")
ALTERNATING = "alternating_flip_translate2"
DEFAULT_SHUFFLE_BUFFER = 10_000
# Batches the training pipeline keeps ready ahead of the step.
PREFETCH_BATCHES = 2

# What `augmentation` may be: a policy name, a Keras layer, a callable on
# float image batches, or None.
Augmentation: TypeAlias = (
    "str | keras.layers.Layer | Callable[[tf.Tensor], tf.Tensor] | None")


def _check_mix(mix: Mapping[str, float] | None) -> tuple[float, float]:
    """Returns `(mixup_alpha, cutmix_alpha)` from the `mix` mapping."""
    if mix is None:
        return 0.0, 0.0
    expected = ("None or a mapping with keys 'mixup_alpha' and/or "
                "'cutmix_alpha'")
    if not isinstance(mix, collections.abc.Mapping) or (
            set(mix) - set(MIX_KEYS)):
        raise invalid("mix", mix, expected)
    mixup_alpha, cutmix_alpha = (
        check_non_negative(f"mix['{k}']", mix.get(k) or 0.0) for k in MIX_KEYS
    )
    return mixup_alpha, cutmix_alpha


def _replica(layers: Sequence[keras.layers.Layer],
             offset: int) -> list[keras.layers.Layer]:
    """Fresh copies of `layers` whose integer seeds are shifted by `offset`."""
    copies = []
    for layer in layers:
        if isinstance(layer, keras.Sequential):
            copies.append(keras.Sequential(_replica(layer.layers, offset)))
            continue
        config = layer.get_config()
        if config.get("seed") is not None:
            config["seed"] = config["seed"] + offset
        copies.append(type(layer).from_config(config))
    return copies


def _augment_fn(
    augmentation: Augmentation, seed: int | None, replicas: int,
    image_shape: Sequence[int | None],
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None:
    """The per-batch augmentation `apply(images, batch_index)`.

    Keras preprocessing layers draw from a seed-generator variable that is
    read then updated; two batches augmented concurrently by the same layer
    can read the same state and get identical draws. So the layers are
    copied into `replicas` independent sets (different seeds), batch `i`
    uses set `i % replicas`, and each set runs inside its own critical
    section: batches are augmented in parallel, never with shared draws.
    """
    if isinstance(augmentation, str):
        augmentation = get_augmentation(augmentation, seed=seed)
    if augmentation is None:
        return None
    if not isinstance(augmentation, keras.layers.Layer):
        if callable(augmentation):
            return lambda images, index: augmentation(images)
        raise invalid("augmentation", augmentation,
                      "a policy name, a Keras layer, a callable or None")
    sets = [augmentation_model_layers(augmentation)]
    try:
        sets += [_replica(sets[0], 7919 * r) for r in range(1, replicas)]
    except (TypeError, ValueError, KeyError, NotImplementedError):
        pass  # a layer that cannot be rebuilt from its config: one set
    sections = [tf.CriticalSection() for _ in sets]

    def run(layers: Sequence[keras.layers.Layer],
            images: tf.Tensor) -> tf.Tensor:
        # Called one by one, each preprocessing layer switches itself to
        # TensorFlow inside tf.data, whatever the Keras backend.
        for layer in layers:
            images = layer(images, training=True)
        return tf.cast(images, tf.float32)

    if keras.backend.backend() != "tensorflow":
        # Under JAX or torch each layer creates a TensorFlow seed generator
        # on its first call in a graph: create it now, outside the critical
        # section (where variables cannot be initialized).
        shape = [32 if d is None else d for d in image_shape] or [32, 32, 3]
        dummy = tf.zeros([1] + shape, tf.float32)
        for layers in sets:
            tf.function(lambda images, layers=layers: run(layers, images))(
                dummy)

    def apply(images: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        if len(sets) == 1:
            return sections[0].execute(lambda: run(sets[0], images))
        branches = [
            lambda s=s, c=c: c.execute(lambda: run(s, images))
            for s, c in zip(sets, sections)
        ]
        choice = tf.cast(index % len(sets), tf.int32)
        return tf.switch_case(choice, branches)

    return apply


def _to_float(images: tf.Tensor, normalize: bool) -> tf.Tensor:
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32)
        return images / 255.0 if normalize else images
    return tf.cast(images, tf.float32)


def _from_dataset(
    dataset: tf.data.Dataset, num_classes: int | None, cache: bool | str,
    shuffle: bool, buffer: int, seed: int | None,
) -> tuple[tf.data.Dataset, tuple[int | None, ...]]:
    """Unbatched, cached, shuffled `(image, label)` pairs, and image shape."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise invalid("x", dataset, "a dataset of (image, label) pairs")
    if spec[0].shape.rank == 4:  # already batched: rebatch ourselves
        dataset = dataset.unbatch()
    rank = spec[0].shape.rank
    image_shape = tuple(spec[0].shape)[-3:] if rank in (3, 4) else ()
    if num_classes is not None and spec[1].dtype.is_integer:
        dataset = dataset.map(lambda x, y: (x, tf.one_hot(
            tf.reshape(y, []), num_classes, dtype=tf.float32)))
    if cache:
        dataset = dataset.cache() if cache is True else dataset.cache(cache)
    if shuffle:
        dataset = dataset.shuffle(buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    return dataset, image_shape


def make_dataset(
    x: npt.ArrayLike | tf.data.Dataset, y: npt.ArrayLike | None,
    batch_size: int, training: bool, augmentation: Augmentation = None,
    mix: Mapping[str, float] | None = None, num_classes: int | None = None,
    seed: int | None = None, normalize: bool = True,
    drop_remainder: bool | None = None, cache: bool | str = False,
    shuffle_buffer: int | None = None, deterministic: bool = False,
) -> tf.data.Dataset:
    """Builds the tf.data pipeline for training or evaluation.

    Training: reshuffled every epoch (seeded), batched, augmented per batch
    in a parallel `map` (a fresh draw on every epoch), optionally mixed with
    MixUp/CutMix, prefetched. Evaluation: batched in order, no augmentation
    or mixing. Images come out float32 (in [0, 1] for uint8 input with
    `normalize=True`); labels come out one-hot float32 when `num_classes` is
    given (from integer or one-hot labels), else as given (integers as
    int32 of shape (N,)).

    Args:
        x: images, a NumPy array (N, H, W, C) of uint8 or floats in [0, 1];
            or a `tf.data.Dataset` of `(image, label)` pairs (batched or
            not; `y` must then be `None`).
        y: integer labels (N,) or (N, 1), or one-hot labels (N, K).
        batch_size: images per batch, >= 1.
        training: `True` for the training pipeline.
        augmentation: a policy name (see `get_augmentation`), a Keras layer,
            a callable on float image batches, or `None`. Training only.
            With array inputs, "alternating_flip_translate2" flips each
            image on every other pass over the data (see
            `alternating_flip_mask`) before the 2-pixel shift; with a
            dataset input (no image indices) it warns and flips at random.
            Defaults to `None`.
        mix: `None` or `{"mixup_alpha": a, "cutmix_alpha": b}`; an alpha of
            0 turns that method off, both on alternate per batch. Needs
            `num_classes`. Training only. Defaults to `None`.
        num_classes: number of classes, for one-hot output. Defaults to
            `None`.
        seed: seed of the shuffle, the mixing and a named policy. Shuffling
            and mixing are reproducible; augmentation runs in parallel over
            batches, each draw different, but which batch gets which draw
            depends on thread timing unless `deterministic=True`. Defaults
            to `None`.
        normalize: scale uint8 images to [0, 1]. Defaults to `True`.
        drop_remainder: drop the last partial batch. Defaults to `None`
            (dropped when training, if there is at least one full batch).
        cache: for a dataset input, cache its elements in memory (`True`)
            or in this file (a string) before shuffling; arrays are already
            in memory. Defaults to `False`.
        shuffle_buffer: shuffle buffer for a dataset input (arrays are
            shuffled fully). Defaults to `None` (10,000).
        deterministic: augment one batch at a time, in order, so a seeded
            pipeline gives the same images on every run (slower). Defaults
            to `False`.

    Returns:
        A `tf.data.Dataset` of `(images, labels)` batches.

    Example:

    ```python
    train_ds = make_dataset(x_train, y_train, 64, training=True,
                            augmentation="standard", num_classes=10, seed=0)
    val_ds = make_dataset(x_val, y_val, 256, training=False, num_classes=10)
    model.fit(train_ds, validation_data=val_ds, epochs=10)
    ```
    """
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(training, (bool, np.bool_)):
        raise invalid("training", training, "True or False")
    seed = check_seed("seed", seed)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, 2)
    mixup_alpha, cutmix_alpha = _check_mix(mix)
    mixing = training and (mixup_alpha > 0 or cutmix_alpha > 0)
    if mixing and num_classes is None:
        raise invalid("num_classes", None, "an integer >= 2 when `mix` is "
                      "given (mixing produces soft labels)")
    augmenting = training and augmentation not in (None, "none")
    # Array inputs: the images and labels of a batch of indices.
    take: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]] | None
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise invalid("y", "<labels>", "None when `x` is a dataset")
        if augmenting and augmentation == ALTERNATING:
            warnings.warn(
                f"augmentation={ALTERNATING!r} needs array inputs (image "
                "indices) for alternating flips; with a tf.data.Dataset the "
                "flips are random (as in 'flip_translate2').", stacklevel=2)
        dataset, image_shape = _from_dataset(
            x, num_classes, cache, training,
            shuffle_buffer or DEFAULT_SHUFFLE_BUFFER, seed)
        drop = training if drop_remainder is None else bool(drop_remainder)
        batches, take = dataset.batch(batch_size, drop_remainder=drop), None
    else:
        x = check_images(x, normalize, spatial=augmenting or mixing)
        y_array = check_labels(y, len(x), num_classes)
        image_shape = x.shape[1:]
        if drop_remainder is None:
            drop_remainder = training and len(x) >= batch_size
        x_tensor, y_tensor = tf.constant(x), tf.constant(y_array)
        batches = tf.data.Dataset.range(len(x))
        if training:
            batches = batches.shuffle(len(x), seed=seed,
                                      reshuffle_each_iteration=True)
        batches = batches.batch(batch_size, drop_remainder=drop_remainder)

        def take(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.gather(x_tensor, indices), tf.gather(y_tensor, indices)

    replicas = 1 if deterministic else min(8, os.cpu_count() or 1)
    tag: Callable[[tf.Tensor], tf.Tensor] | None = None
    flip: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor] | None = None
    if augmenting and augmentation == ALTERNATING and take is not None:
        # Alternating flips by image index; the layers only translate.
        tag, flip = tf_alternating_flip(len(x), seed)
        augmentation = keras.Sequential(
            augmentation_model_layers(augmentation, seed=seed)[1:])
    augment = (_augment_fn(augmentation, seed, replicas, image_shape)
               if augmenting else None)
    elements = [tf.data.Dataset.counter(), batches]
    if mixing:
        # One stateless seed per batch, different on every epoch.
        elements.append(tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True).batch(2))

    def process(index: tf.Tensor, batch: tf.Tensor,
                *extra: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rest = list(extra)
        epoch = rest.pop() if tag is not None else None
        mix_seed = rest.pop() if mixing else None
        images, labels = take(batch) if take is not None else batch
        images = _to_float(images, normalize)
        if flip is not None:
            images = flip(images, batch, epoch)
        if augment is not None:
            images = augment(images, index)
        if mix_seed is not None:
            labels = tf.cast(labels, tf.float32)
            images, labels = mix_batch(images, labels, mixup_alpha,
                                       cutmix_alpha, mix_seed)
        return images, labels

    parallel = None if deterministic else replicas
    dataset = tf.data.Dataset.zip(tuple(elements))
    if tag is not None:  # in order: batch 0 of each pass starts an epoch
        dataset = dataset.map(lambda index, *rest: (index, *rest, tag(index)))
    dataset = dataset.map(process, num_parallel_calls=parallel)
    return without_autotune(
        dataset.prefetch(max(PREFETCH_BATCHES, parallel or 1)))


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off (its parallelism as set).

    With autotuning on, each iterator runs a model thread that sleeps
    between tuning rounds, for up to a minute once the iterator is old.
    `fit` drops the last epoch's iterator when the next epoch starts, and
    TensorFlow 2.21 waits for that thread to wake before freeing it: a
    stall of up to 40 s at the start of an epoch, measured on 2 cores
    (`bench/README.md`). This pipeline's parallelism is fixed, so it has
    nothing to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def loader_dataset(loader: keras.utils.PyDataset) -> tf.data.Dataset:
    """A finite `PyDataset` (such as `ArrayLoader`) as a tf.data pipeline.

    What `fit` gets on TensorFlow from the builder's `loader="arrays"`:
    Keras's own adapter for a `PyDataset` prefetches with tf.data's
    autotuning on, which can stall `fit` between epochs (see
    `without_autotune`). Here `PREFETCH_BATCHES` batches are prefetched
    with autotuning off. Each pass yields `loader[0]`, ..., `loader[-1]`.
    Every pass but the first begins by calling `loader.on_epoch_end()`,
    so consecutive passes see consecutive epochs of the loader, as under
    Keras's adapter.
    """
    count = len(loader)
    if count < 1:
        raise invalid("loader", loader, "a PyDataset with at least one batch")
    first = tuple(np.asarray(part) for part in loader[0])
    signature = tuple(
        tf.TensorSpec((None,) + part.shape[1:], tf.as_dtype(part.dtype))
        for part in first)
    passes: list[None] = []  # one entry a pass begun

    def batches() -> collections.abc.Iterator[tuple[np.ndarray, ...]]:
        if passes:
            loader.on_epoch_end()
        passes.append(None)
        loader.on_epoch_begin()
        for index in range(count):
            yield tuple(loader[index])

    dataset = tf.data.Dataset.from_generator(batches,
                                             output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    return without_autotune(dataset.prefetch(PREFETCH_BATCHES))
