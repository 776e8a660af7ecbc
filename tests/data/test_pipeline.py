"""Tests for keras_regkit.data.pipeline: make_dataset (tf.data)."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_regkit.data import alternating_flip_mask
from keras_regkit.data import augmentation_model_layers
from keras_regkit.data import get_augmentation
from keras_regkit.data import ArrayLoader
from keras_regkit.data import make_dataset
from keras_regkit.data.pipeline import loader_dataset
from tests.helpers import match_shift

pytestmark = pytest.mark.requires_tensorflow
ALTERNATING = "alternating_flip_translate2"


def _collect(dataset):
    images, labels = zip(*[(a.numpy(), b.numpy()) for a, b in dataset])
    return np.concatenate(images), np.concatenate(labels)


def test_evaluation_pipeline_keeps_order_and_scales(cifar10_small):
    x, y = cifar10_small
    dataset = make_dataset(x, y, 64, training=False, num_classes=10)
    sizes = [len(b[0]) for b in dataset]
    assert sizes == [64] * 15 + [40]
    images, labels = _collect(dataset)
    assert images.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_allclose(images, x / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, np.eye(10)[y])


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
def test_label_forms_give_one_hot_float32(form, cifar10_small):
    x, y = cifar10_small[0][:100], cifar10_small[1][:100]
    given = {"int": y, "column": y[:, None].astype("uint8"),
             "one_hot": np.eye(10, dtype="float64")[y]}[form]
    _, labels = _collect(make_dataset(x, given, 32, False, num_classes=10))
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, np.eye(10)[y])


def test_without_num_classes_labels_pass_through(cifar10_small):
    x, y = cifar10_small[0][:50], cifar10_small[1][:50]
    _, labels = _collect(make_dataset(x, y[:, None], 16, False))
    assert labels.dtype == np.int32 and labels.shape == (50,)
    np.testing.assert_array_equal(labels, y)


def test_training_reshuffles_every_epoch_and_is_seeded(cifar10_small):
    x = cifar10_small[0][:200]
    ids = np.arange(200)  # labels as image ids (no num_classes)
    dataset = make_dataset(x, ids, 50, True, seed=7)
    first, second = [_collect(dataset)[1] for _ in range(2)]
    assert sorted(first) == list(range(200))  # every image once per epoch
    assert not np.array_equal(first, second)
    again = _collect(make_dataset(x, ids, 50, True, seed=7))[1]
    np.testing.assert_array_equal(first, again)


def test_training_drops_the_partial_batch_by_default(cifar10_small):
    x, y = cifar10_small
    sizes = [len(b[0]) for b in make_dataset(x, y, 64, True)]
    assert sizes == [64] * 15
    sizes = [len(b[0]) for b in make_dataset(x, y, 64, True,
                                             drop_remainder=False)]
    assert sizes[-1] == 40


def _by_id(dataset):
    images, ids = _collect(dataset)
    return images[np.argsort(ids)]


def test_augmentation_is_fresh_every_epoch(cifar10_small):
    x = cifar10_small[0][:64]
    dataset = make_dataset(x, np.arange(64), 32, True,
                           augmentation="standard", seed=0)
    first, second = _by_id(dataset), _by_id(dataset)
    raw = x / 255.0
    # Per image, mean absolute change; both epochs moved every image.
    assert np.abs(first - raw).mean(axis=(1, 2, 3)).min() > 1e-3
    assert np.abs(first - second).mean(axis=(1, 2, 3)).min() > 1e-3


def test_no_two_batches_share_augmentation_draws(cifar10_small):
    copies = np.repeat(cifar10_small[0][:1], 16 * 60, axis=0)
    dataset = make_dataset(copies, np.zeros(len(copies), "int64"), 16, True,
                           augmentation="light", seed=0)
    signatures = {tuple(np.round(b[0].numpy().mean(axis=(1, 2, 3)), 5))
                  for b in dataset}
    assert len(signatures) == 60


def test_deterministic_mode_repeats_exactly(cifar10_small):
    x, y = cifar10_small[0][:96], cifar10_small[1][:96]

    def run():
        return _collect(make_dataset(
            x, y, 32, True, augmentation="standard", seed=4, num_classes=10,
            mix={"mixup_alpha": 0.4, "cutmix_alpha": 1.0},
            deterministic=True))

    (a, la), (b, lb) = run(), run()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_pipeline_and_model_placement_agree(cifar10_small):
    copies = np.repeat(cifar10_small[0][:1], 512, axis=0)
    raw = copies.astype("float32") / 255.0
    piped = _collect(make_dataset(
        copies, np.zeros(512, "int64"), 128, True,
        augmentation=get_augmentation("standard", seed=1), seed=0))[0]
    model = keras.Sequential(augmentation_model_layers("standard", seed=2))
    modelled = keras.ops.convert_to_numpy(model(raw, training=True))
    # Per-pixel mean and std over 512 augmented copies of one image. Two
    # independent seeds of the same placement differ by about 0.008.
    mean_gap = np.abs(piped.mean(0) - modelled.mean(0)).mean()
    std_gap = np.abs(piped.std(0) - modelled.std(0)).mean()
    assert mean_gap < 0.015 and std_gap < 0.015
    assert piped.std(0).mean() > 0.05  # the copies really vary
    np.testing.assert_array_equal(model(raw[:4], training=False), raw[:4])


def test_mixing_in_the_pipeline(cifar10_small):
    x, y = cifar10_small[0][:256], cifar10_small[1][:256]
    for mix in ({"mixup_alpha": 0.2}, {"cutmix_alpha": 1.0},
                {"mixup_alpha": 0.2, "cutmix_alpha": 1.0}):
        _, labels = _collect(make_dataset(x, y, 64, True, mix=mix, seed=3,
                                          num_classes=10))
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-6)
        assert (labels.max(axis=1) < 1.0).mean() > 0.5  # soft labels
    _, labels = _collect(make_dataset(x, y, 64, False, num_classes=10,
                                      mix={"mixup_alpha": 0.2}))
    np.testing.assert_array_equal(labels, np.eye(10)[y])  # eval: no mixing


def test_dataset_input_batched_or_not(cifar10_small):
    x, y = cifar10_small[0][:100], cifar10_small[1][:100]
    for source in (tf.data.Dataset.from_tensor_slices((x, y)),
                   tf.data.Dataset.from_tensor_slices((x, y)).batch(7)):
        images, labels = _collect(make_dataset(source, None, 32, False,
                                               num_classes=10))
        np.testing.assert_allclose(images, x / 255.0, atol=1e-7)
        np.testing.assert_array_equal(labels, np.eye(10)[y])
    train = make_dataset(tf.data.Dataset.from_tensor_slices((x, y)), None,
                         25, True, augmentation="flip", num_classes=10,
                         seed=1, cache=True)
    assert [len(b[0]) for b in train] == [25] * 4


@pytest.mark.parametrize("deterministic", [False, True])
def test_pipelines_run_without_autotuning(cifar10_small, deterministic):
    # With tf.data's autotuning on, `fit` can stall up to 40 s at an
    # epoch's start while TensorFlow frees the last epoch's iterator.
    x, y = cifar10_small[0][:100], cifar10_small[1][:100]
    pipelines = [
        make_dataset(x, y, 32, True, augmentation=ALTERNATING,
                     num_classes=10, seed=0, deterministic=deterministic),
        make_dataset(x, y, 32, False, num_classes=10),
        make_dataset(tf.data.Dataset.from_tensor_slices((x, y)), None, 32,
                     True, augmentation="flip", mix={"mixup_alpha": 0.2},
                     num_classes=10, seed=0, deterministic=deterministic),
    ]
    # Training drops the partial batch of 4; evaluation keeps it.
    for dataset, images in zip(pipelines, (96, 100, 96)):
        assert dataset.options().autotune.enabled is False
        # Every epoch (a fresh iterator each) still yields every batch.
        for _ in range(2):
            assert sum(len(b[0]) for b in dataset) == images


@pytest.mark.parametrize("training", [True, False])
def test_a_loader_as_tf_data_yields_its_epochs_in_order(training):
    # What the builder hands `fit` for `loader="arrays"` on TensorFlow.
    x = np.random.default_rng(0).integers(0, 256, (70, 8, 8, 3), "uint8")
    y = np.arange(70) % 10

    def loader():
        return ArrayLoader(x, y, 16, training=training,
                           augmentation=ALTERNATING if training else "none",
                           num_classes=10, seed=5)

    dataset = loader_dataset(loader())
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == (4 if training else 5)
    reference = loader()
    for epoch in range(3):  # a fresh iterator each, as `fit` makes them
        got = [tuple(part.numpy() for part in batch) for batch in dataset]
        expected = [reference[i] for i in range(len(reference))]
        assert len(got) == len(expected)
        for (gx, gy), (ex, ey) in zip(got, expected):
            np.testing.assert_array_equal(gx, ex)
            np.testing.assert_array_equal(gy, ey)
        reference.on_epoch_end()


def test_trains_a_model(cifar10_small):
    x, y = cifar10_small[0][:128], cifar10_small[1][:128]
    dataset = make_dataset(x, y, 32, True, augmentation="light",
                           mix={"cutmix_alpha": 1.0}, num_classes=10, seed=0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def _bad(cifar10_small, **override):
    x, y = cifar10_small[0][:20], cifar10_small[1][:20]
    args = dict(x=x, y=y, batch_size=8, training=True, num_classes=10)
    args.update(override)
    return args


@pytest.mark.parametrize("override,name", [
    ({"y": np.zeros(19, "int64")}, "y"),
    ({"x": np.zeros((0, 32, 32, 3), "uint8"), "y": np.zeros(0)}, "x"),
    ({"x": np.zeros((20, 32, 32), "uint8"), "augmentation": "flip"}, "x"),
    ({"x": np.zeros((20, 32, 32, 3), "int64")}, "x"),
    ({"x": np.full((20, 32, 32, 3), np.nan, "float32")}, "x"),
    ({"x": np.full((20, 32, 32, 3), 255.0, "float32")}, "x"),
    ({"y": np.full(20, 10)}, "y"),
    ({"y": np.full(20, -1)}, "y"),
    ({"y": np.full(20, 0.5)}, "y"),
    ({"y": np.full((20, 10), 0.5)}, "y"),
    ({"y": np.eye(5)[np.zeros(20, int)]}, "num_classes"),
    ({"batch_size": 0}, "batch_size"),
    ({"training": "yes"}, "training"),
    ({"seed": -1}, "seed"),
    ({"num_classes": 1}, "num_classes"),
    ({"mix": {"mixup_alpha": 0.2}, "num_classes": None}, "num_classes"),
    ({"mix": {"mixup": 0.2}}, "mix"),
    ({"mix": {"cutmix_alpha": -1.0}}, "mix"),
    ({"augmentation": "heavy"}, "name"),
    ({"augmentation": 3}, "augmentation"),
    ({"x": tf.data.Dataset.range(3)}, "y"),
])
def test_invalid_arguments_are_named(cifar10_small, override, name):
    with pytest.raises(ValueError, match=f"`{name}"):
        make_dataset(**_bad(cifar10_small, **override))


# Alternating flips (keras_regkit.data.flips) inside the pipeline.


def _epoch_uint8(dataset):
    images, ids = zip(*[(a.numpy(), b.numpy()) for a, b in dataset])
    images = np.round(np.concatenate(images) * 255).astype(np.uint8)
    return images, np.concatenate(ids)


def test_pipeline_flips_alternate_per_image_across_epochs(cifar10_small):
    x = cifar10_small[0][:160]
    n = len(x)
    dataset = make_dataset(x, np.arange(n), 16, training=True,
                           augmentation=ALTERNATING, seed=0)
    states, offsets = [], set()
    for epoch in range(3):
        images, ids = _epoch_uint8(dataset)
        assert sorted(ids) == list(range(n))
        matches, seen = match_shift(images, x[ids])
        # Each image is a <= 2 px reflected shift of exactly one orientation.
        np.testing.assert_array_equal(matches.sum(axis=0), 1)
        flipped = np.zeros(n, bool)
        flipped[ids] = matches[1]
        states.append(flipped)
        offsets |= seen
        np.testing.assert_array_equal(
            flipped, alternating_flip_mask(n, epoch, seed=0))
    assert abs(states[0].sum() - n / 2) <= 4 * np.sqrt(n / 4)  # 80 +- 25
    np.testing.assert_array_equal(states[1], ~states[0])
    np.testing.assert_array_equal(states[2], states[0])
    assert len(offsets) > 10  # the 2-px translation is on (25 possible)


def test_pipeline_epoch_zero_mask_is_reproducible(cifar10_small):
    x = cifar10_small[0][:64]
    first = []
    for seed in (5, 5, 6):
        dataset = make_dataset(x, np.arange(64), 16, True,
                               augmentation=ALTERNATING, seed=seed)
        images, ids = _epoch_uint8(dataset)
        matches, _ = match_shift(images, x[ids])
        flipped = np.zeros(64, bool)
        flipped[ids] = matches[1]
        first.append(flipped)
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])


def test_pipeline_alternating_flip_composes_with_mixing(cifar10_small):
    x, y = cifar10_small[0][:64], cifar10_small[1][:64]
    dataset = make_dataset(x, y, 16, True, augmentation=ALTERNATING,
                           mix={"cutmix_alpha": 1.0}, num_classes=10, seed=0)
    for images, labels in dataset:
        assert images.shape == (16, 32, 32, 3) and labels.shape == (16, 10)
        np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, atol=1e-5)


def test_pipeline_dataset_input_warns_and_flips_at_random(cifar10_small):
    x, y = cifar10_small[0][:32], cifar10_small[1][:32]
    source = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.warns(UserWarning, match="alternating"):
        dataset = make_dataset(source, None, 16, True,
                               augmentation=ALTERNATING, seed=0)
    images = np.concatenate([a.numpy() for a, _ in dataset])
    assert images.shape == (32, 32, 32, 3)
