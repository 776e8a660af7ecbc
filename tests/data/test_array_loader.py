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
from keras_regkit.data.array_loader import mix_arrays
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


# MixUp and CutMix (NumPy, on every backend).

def _constant_batch(values):
    """Image i filled with values[i]; its label the one-hot e_i."""
    images = np.broadcast_to(np.asarray(values, np.float32)[:, None, None,
                                                            None],
                             (len(values), 8, 8, 3)).copy()
    return images, np.eye(len(values), dtype=np.float32)


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha", [
    (0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixing_weights_pixels_and_labels_alike(mixup_alpha, cutmix_alpha):
    # With constant images and one-hot labels, an image's mean pixel must
    # equal its soft label times the source values: the label weight of
    # each source is the share of pixels (MixUp) or area (CutMix) it gave.
    values = np.arange(1.0, 17.0)
    kinds = set()
    for seed in range(40):
        images, labels = _constant_batch(values)
        mixed, soft = mix_arrays(images, labels, mixup_alpha, cutmix_alpha,
                                 np.random.default_rng(seed))
        assert mixed.dtype == soft.dtype == np.float32
        np.testing.assert_allclose(soft.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(mixed.mean((1, 2, 3)), soft @ values,
                                   rtol=1e-5)
        # Each image draws from itself and at most one partner.
        assert ((soft > 1e-7).sum(-1) <= 2).all()
        # CutMix leaves pixels at their source values; MixUp blends them.
        pure = np.isin(mixed, values).all()
        kinds.add("cutmix" if pure else "mixup")
    expected = {"mixup"} if cutmix_alpha == 0 else (
        {"cutmix"} if mixup_alpha == 0 else {"mixup", "cutmix"})
    assert kinds == expected


def test_cutmix_pastes_one_box_per_batch():
    boxes = 0
    for seed in range(10):
        images, labels = _constant_batch(np.arange(1.0, 9.0))
        mixed, soft = mix_arrays(images, labels, 0.0, 1.0,
                                 np.random.default_rng(seed))
        changed = (mixed != images).any(-1)  # (B, 8, 8)
        box = changed.any(0)
        if not box.any():
            continue  # lam near 1: an empty box
        boxes += 1
        rows, cols = np.nonzero(box)
        # The changed pixels fill one rectangle, the same for the batch.
        assert box[rows.min():rows.max() + 1,
                   cols.min():cols.max() + 1].all()
        # Each changed image keeps its own label for the area outside it.
        hit = changed.any((1, 2))
        np.testing.assert_allclose(np.diag(soft)[hit], 1.0 - box.mean(),
                                   rtol=1e-6)
    assert boxes >= 5


def test_mixup_weight_follows_the_beta_distribution():
    # lam ~ Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)). Over about
    # 1,000 pairings the sample variance is within 10% of it (5 standard
    # errors) and the mean within 0.05 (4 standard errors).
    alpha = 0.4
    images, labels = _constant_batch([0.0, 1.0])
    lams = []
    rng = np.random.default_rng(0)
    for _ in range(2000):
        _, soft = mix_arrays(images, labels, alpha, 0.0, rng)
        if soft[0, 0] < 1.0:  # paired with the other image: lam itself
            lams.append(soft[0, 0])
    lams = np.asarray(lams)
    assert len(lams) > 800
    assert abs(lams.mean() - 0.5) < 0.05
    assert lams.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.1)


def test_loader_mixes_training_batches_only_and_reproducibly(cifar10_small):
    x, y = cifar10_small[0][:64], cifar10_small[1][:64]
    train = ArrayLoader(x, y, 16, True, num_classes=10, seed=5,
                        mixup_alpha=0.4, cutmix_alpha=1.0)
    images, labels = train[1]
    assert labels.shape == (16, 10)
    np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-6)
    assert (labels.max(-1) < 1.0).any()  # some rows are blended
    again = ArrayLoader(x, y, 16, True, num_classes=10, seed=5,
                        mixup_alpha=0.4, cutmix_alpha=1.0)
    np.testing.assert_array_equal(again[1][0], images)
    np.testing.assert_array_equal(again[1][1], labels)
    # The pairing is made inside the batch: without mixing, the same
    # images and labels come out as one-hot rows of those images.
    plain = ArrayLoader(x, y, 16, True, num_classes=10, seed=5)
    np.testing.assert_array_equal(plain.indices(1), train.indices(1))
    assert set(np.nonzero(labels)[1]) <= set(y[train.indices(1)])
    evaluation = ArrayLoader(x, y, 16, False, num_classes=10,
                             mixup_alpha=0.4)
    np.testing.assert_array_equal(evaluation[0][1],
                                  np.eye(10, dtype=np.float32)[y[:16]])


def test_mixing_integer_labels_is_refused_by_name():
    x = np.zeros((20, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="argument `cutmix_alpha`.*pass "
                                         "`num_classes`"):
        ArrayLoader(x, np.arange(20) % 3, 8, True, cutmix_alpha=1.0)
    with pytest.raises(ValueError, match="argument `mixup_alpha`"):
        ArrayLoader(x, np.arange(20) % 3, 8, True, num_classes=3,
                    mixup_alpha=-0.1)


def test_from_preset_honours_every_data_field_or_names_it(cifar10_small):
    from keras_regkit import get_preset

    x, y = cifar10_small[0][:64], cifar10_small[1][:64]
    fast = ArrayLoader.from_preset(x, y, get_preset("fast", batch_size=16),
                                   training=True, num_classes=10, seed=0)
    assert (fast.batch_size, fast.augmentation) == (
        16, "alternating_flip_translate2")
    assert fast.mixup_alpha == fast.cutmix_alpha == 0.0
    # The large preset mixes (MixUp 0.2) and uses the "strong" policy,
    # which is Keras layers: refused by name, not silently dropped.
    with pytest.raises(ValueError, match="sets augmentation='strong', "
                                         "which ArrayLoader cannot apply"):
        ArrayLoader.from_preset(x, y, get_preset("large"), True,
                                num_classes=10)
    large = get_preset("large", augmentation="flip_translate2",
                       batch_size=16, cutmix_alpha=1.0)
    loader = ArrayLoader.from_preset(x, y, large, True, num_classes=10,
                                     seed=1)
    assert (loader.mixup_alpha, loader.cutmix_alpha) == (0.2, 1.0)
    labels = np.concatenate([loader[i][1] for i in range(len(loader))])
    assert (labels.max(-1) < 1.0).any()
    with pytest.raises(ValueError, match="sets mixup_alpha=0.2; mixing "
                                         "blends labels, so pass "
                                         "`num_classes`"):
        ArrayLoader.from_preset(x, y, large, True)
    with pytest.raises(TypeError, match="argument `preset`"):
        ArrayLoader.from_preset(x, y, "large", True, num_classes=10)
    with pytest.raises(TypeError, match="takes batch_size from the preset.*"
                                        "Received: batch_size=8"):
        ArrayLoader.from_preset(x, y, large, True, num_classes=10,
                                batch_size=8)


def test_model_fit_on_a_mixing_loader(cifar10_small):
    x, y = cifar10_small[0][:64], cifar10_small[1][:64]
    train = ArrayLoader(x, y, 32, True, num_classes=10, seed=0,
                        augmentation="flip_translate2", mixup_alpha=0.2,
                        cutmix_alpha=1.0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(train, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
