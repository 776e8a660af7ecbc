"""Tests for keras_regkit.data.ArrayLoader (runs on every backend)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras

from keras_regkit.data import ArrayLoader
from keras_regkit.data import alternating_flip_mask
from keras_regkit.data.array_loader import random_translate
from tests.helpers import REPO_ROOT
from tests.helpers import match_shift


def _epoch_ids(loader):
    return np.concatenate([loader[i][1] for i in range(len(loader))])


def _epoch(loader):
    images, ids = zip(*(loader[i] for i in range(len(loader))))
    images = np.round(np.concatenate(images) * 255).astype(np.uint8)
    return images, np.concatenate(ids)


@pytest.mark.parametrize("training,n,expected", [
    (True, 100, 6), (False, 100, 7), (True, 160, 10), (True, 10, 1),
])
def test_length_drops_the_partial_batch_only_when_training(
        training, n, expected, cifar10_small):
    loader = ArrayLoader(cifar10_small[0][:n], np.arange(n), 16, training)
    assert len(loader) == expected
    if n < 16:  # fewer images than a batch: one partial batch, kept
        assert len(loader[0][0]) == n


def test_evaluation_keeps_order_scales_and_one_hot(cifar10_small):
    x, y = cifar10_small[0][:50], cifar10_small[1][:50]
    loader = ArrayLoader(x, y, 16, training=False, num_classes=10,
                         augmentation="alternating_flip_translate2")
    images, labels = zip(*(loader[i] for i in range(len(loader))))
    assert [len(b) for b in images] == [16, 16, 16, 2]
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_allclose(images, x / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, np.eye(10)[y])


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
def test_label_forms(form, cifar10_small):
    x, y = cifar10_small[0][:20], cifar10_small[1][:20]
    given = {"int": y, "column": y[:, None].astype("uint8"),
             "one_hot": np.eye(10, dtype="float64")[y]}[form]
    _, labels = ArrayLoader(x, given, 20, False, num_classes=10)[0]
    np.testing.assert_array_equal(labels, np.eye(10, dtype="float32")[y])
    _, raw = ArrayLoader(x, given, 20, False)[0]
    expected = np.eye(10)[y] if form == "one_hot" else y
    assert raw.dtype == (np.float32 if form == "one_hot" else np.int32)
    np.testing.assert_array_equal(raw, expected)


def test_every_image_once_per_epoch_reshuffled_and_seeded(cifar10_small):
    x = cifar10_small[0][:160]
    loader = ArrayLoader(x, np.arange(160), 16, True, seed=7)
    first = _epoch_ids(loader)
    assert sorted(first) == list(range(160))
    np.testing.assert_array_equal(_epoch_ids(loader), first)  # same epoch
    loader.on_epoch_end()
    assert loader.epoch == 1
    second = _epoch_ids(loader)
    assert sorted(second) == list(range(160))
    assert not np.array_equal(first, second)
    again = ArrayLoader(x, np.arange(160), 16, True, seed=7)
    np.testing.assert_array_equal(_epoch_ids(again), first)
    other = ArrayLoader(x, np.arange(160), 16, True, seed=8)
    assert not np.array_equal(_epoch_ids(other), first)


def test_drop_keeps_distinct_images(cifar10_small):
    loader = ArrayLoader(cifar10_small[0][:100], np.arange(100), 16, True,
                         seed=0)
    ids = _epoch_ids(loader)
    assert len(ids) == 96 and len(set(ids)) == 96


def test_alternating_flip_alternates_per_image(cifar10_small):
    x = cifar10_small[0][:160]
    loader = ArrayLoader(x, np.arange(160), 16, True, seed=3,
                         augmentation="alternating_flip")
    states = []
    for epoch in range(3):
        images, ids = _epoch(loader)
        mirrored = np.all(images == x[ids][:, :, ::-1], axis=(1, 2, 3))
        unchanged = np.all(images == x[ids], axis=(1, 2, 3))
        np.testing.assert_array_equal(mirrored ^ unchanged, True)
        state = np.zeros(160, bool)
        state[ids] = mirrored
        np.testing.assert_array_equal(
            state, alternating_flip_mask(160, epoch, seed=3))
        states.append(state)
        loader.on_epoch_end()
    assert abs(states[0].sum() - 80) <= 4 * np.sqrt(40)  # binomial, 4 s.d.
    np.testing.assert_array_equal(states[1], ~states[0])
    np.testing.assert_array_equal(states[2], states[0])


def test_random_flip_flips_about_half(cifar10_small):
    x = cifar10_small[0][:400]
    images, ids = _epoch(ArrayLoader(x, np.arange(400), 50, True, seed=0,
                                     augmentation="flip"))
    mirrored = np.all(images == x[ids][:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(images == x[ids], axis=(1, 2, 3))
    np.testing.assert_array_equal(mirrored ^ unchanged, True)
    assert abs(mirrored.sum() - 200) <= 4 * np.sqrt(100)  # binomial, 4 s.d.


@pytest.mark.parametrize("augmentation", ["flip_translate2",
                                          "alternating_flip_translate2"])
def test_translation_within_two_pixels_with_reflected_borders(
        augmentation, cifar10_small):
    x = cifar10_small[0][:160]
    loader = ArrayLoader(x, np.arange(160), 32, True, seed=1,
                         augmentation=augmentation)
    offsets = set()
    for epoch in range(3):
        images, ids = _epoch(loader)
        matches, seen = match_shift(images, x[ids])
        # Every image is a crop of its symmetric-padded (maybe mirrored)
        # source, i.e. a shift by <= 2 px with reflected borders.
        np.testing.assert_array_equal(matches.sum(axis=0), 1)
        if augmentation.startswith("alternating"):
            state = np.zeros(160, bool)
            state[ids] = matches[1]
            np.testing.assert_array_equal(
                state, alternating_flip_mask(160, epoch, seed=1))
        offsets |= seen
        loader.on_epoch_end()
    assert offsets == {(a, b) for a in range(5) for b in range(5)}


def test_numpy_symmetric_padding_matches_keras_reflect_translation():
    # The claim in random_translate's docstring, checked on this backend.
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1))
    layer = keras.layers.RandomTranslation(
        2 / 8, 2 / 8, fill_mode="reflect", interpolation="nearest", seed=1)
    out = keras.ops.convert_to_numpy(layer(x.astype("float32"),
                                           training=True))
    matches, offsets = match_shift(out.astype(x.dtype), x)
    np.testing.assert_array_equal(matches[0], True)
    assert len(offsets) > 5


def test_random_translate_zero_pixels_is_identity(cifar10_small):
    x = cifar10_small[0][:4]
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(random_translate(x, 0, rng), x)


def test_mean_and_std_standardize_after_scaling(cifar10_small):
    x = cifar10_small[0][:8]
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    images, _ = ArrayLoader(x, np.arange(8), 8, False, mean=mean, std=std)[0]
    expected = (x / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(images, expected, atol=1e-5)


def test_float_images_pass_unscaled(cifar10_small):
    x = cifar10_small[0][:8].astype("float64") / 255.0
    images, _ = ArrayLoader(x, np.arange(8), 8, False)[0]
    assert images.dtype == np.float32
    np.testing.assert_allclose(images, x, atol=1e-7)


def test_model_fit_on_the_loader_advances_the_epoch(cifar10_small):
    x, y = cifar10_small[0][:128], cifar10_small[1][:128]
    train = ArrayLoader(x, y, 32, True, num_classes=10, seed=0,
                        augmentation="alternating_flip_translate2")
    val = ArrayLoader(x[:64], y[:64], 64, False, num_classes=10)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert len(history.history["val_accuracy"]) == 2
    # One call per epoch, plus (Keras 3.15) one after the batch that fit
    # reads to build the model before the first epoch.
    assert train.epoch in (2, 3)


def test_imports_and_runs_without_tensorflow():
    code = textwrap.dedent("""
        import os, sys
        sys.modules["tensorflow"] = None  # any import of it now fails
        os.environ["KERAS_BACKEND"] = "jax"
        import numpy as np
        from keras_regkit.data.array_loader import ArrayLoader
        import keras_regkit.data
        x = np.zeros((40, 8, 8, 3), np.uint8)
        loader = ArrayLoader(x, np.arange(40) % 4, 16, True, num_classes=4,
                             augmentation="alternating_flip_translate2")
        images, labels = loader[1]
        assert images.shape == (16, 8, 8, 3) and labels.shape == (16, 4)
        assert sys.modules["tensorflow"] is None
        print("no-tf-ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no-tf-ok" in result.stdout


@pytest.mark.parametrize("kwargs,name", [
    (dict(batch_size=0), "batch_size"),
    (dict(training="yes"), "training"),
    (dict(augmentation="rotate"), "augmentation"),
    (dict(num_classes=1), "num_classes"),
    (dict(seed=-1), "seed"),
    (dict(normalize="no"), "normalize"),
    (dict(drop_remainder="no"), "drop_remainder"),
    (dict(drop_remainder=True, batch_size=64), "drop_remainder"),
    (dict(mean=(0.1, 0.2)), "mean"),
    (dict(std=0.0), "std"),
    (dict(x=np.zeros((20, 8, 8, 3), np.int64)), "x"),
    (dict(x=np.zeros((20, 8)), augmentation="flip"), "x"),
    (dict(y=np.arange(19)), "y"),
])
def test_invalid_arguments_are_rejected(kwargs, name):
    args = dict(x=np.zeros((20, 8, 8, 3), np.uint8), y=np.arange(20),
                batch_size=8, training=True)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        ArrayLoader(**args)


def test_index_out_of_range_is_rejected():
    loader = ArrayLoader(np.zeros((20, 8, 8, 3), np.uint8), np.arange(20), 8,
                         True)
    with pytest.raises(IndexError, match="argument `index`"):
        loader[2]
