"""Tests for keras_regkit.data.flips and alternating flips in make_dataset."""

import numpy as np
import pytest

from keras_regkit.data import alternating_flip_mask
from keras_regkit.data.flips import flip_images

from tests.conftest import requires_tensorflow

ALTERNATING = "alternating_flip_translate2"


def _binomial_ok(count, n, sigmas=4.0):
    """`count` successes of `n` fair coin flips lie within `sigmas` s.d."""
    return abs(count - n / 2) <= sigmas * np.sqrt(n / 4)


def test_mask_flips_about_half_on_epoch_zero():
    mask = alternating_flip_mask(1000, 0, seed=0)
    assert mask.dtype == bool and mask.shape == (1000,)
    assert _binomial_ok(mask.sum(), 1000)  # 500 +- 63


def test_mask_alternates_every_epoch():
    masks = [alternating_flip_mask(500, e, seed=3) for e in range(4)]
    np.testing.assert_array_equal(masks[1], ~masks[0])
    np.testing.assert_array_equal(masks[2], masks[0])
    np.testing.assert_array_equal(masks[3], ~masks[0])
    # Over any two consecutive epochs each image is flipped exactly once.
    for a, b in zip(masks, masks[1:]):
        np.testing.assert_array_equal(a.astype(int) + b.astype(int), 1)


def test_mask_is_seeded():
    a = alternating_flip_mask(300, 0, seed=11)
    np.testing.assert_array_equal(a, alternating_flip_mask(300, 0, seed=11))
    np.testing.assert_array_equal(
        a, np.random.default_rng(11).random(300) < 0.5)
    assert not np.array_equal(a, alternating_flip_mask(300, 0, seed=12))


@pytest.mark.parametrize("kwargs,name", [
    (dict(num_images=0, epoch=0), "num_images"),
    (dict(num_images=10, epoch=-1), "epoch"),
    (dict(num_images=10, epoch=1.5), "epoch"),
    (dict(num_images=10, epoch=0, seed=-2), "seed"),
])
def test_mask_rejects_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        alternating_flip_mask(**kwargs)


def test_flip_images_mirrors_only_masked_images(cifar10_small):
    x = cifar10_small[0][:6]
    mask = np.array([True, False, True, False, False, True])
    out = flip_images(x, mask)
    np.testing.assert_array_equal(out[mask], x[mask][:, :, ::-1])
    np.testing.assert_array_equal(out[~mask], x[~mask])


def test_flip_images_rejects_a_mask_of_the_wrong_shape(cifar10_small):
    with pytest.raises(ValueError, match="argument `mask`"):
        flip_images(cifar10_small[0][:4], np.ones(3, bool))


def match_shift(images, sources, pixels=2):
    """Which orientation and shift of its source each image is.

    An image matches when it equals a crop of its source (or of the mirrored
    source) padded by `pixels` with reflected borders (edge repeated).

    Returns:
        `(matches, offsets)`: `matches` bool (2, N), row 1 for the mirrored
        source; `offsets` the set of matching `(row, col)` crop offsets.
    """
    pad = ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0))
    h, w = images.shape[1:3]
    matches = np.zeros((2, len(images)), bool)
    offsets = set()
    for flipped in (0, 1):
        src = sources[:, :, ::-1] if flipped else sources
        padded = np.pad(src, pad, mode="symmetric")
        for a in range(2 * pixels + 1):
            for b in range(2 * pixels + 1):
                equal = np.all(padded[:, a:a + h, b:b + w] == images,
                               axis=(1, 2, 3))
                matches[flipped] |= equal
                if equal.any():
                    offsets.add((a, b))
    return matches, offsets


def _epoch(dataset):
    images, ids = zip(*[(a.numpy(), b.numpy()) for a, b in dataset])
    images = np.round(np.concatenate(images) * 255).astype(np.uint8)
    return images, np.concatenate(ids)


@requires_tensorflow
def test_pipeline_flips_alternate_per_image_across_epochs(cifar10_small):
    from keras_regkit.data import make_dataset

    x = cifar10_small[0][:160]
    n = len(x)
    dataset = make_dataset(x, np.arange(n), 16, training=True,
                           augmentation=ALTERNATING, seed=0)
    states, offsets = [], set()
    for epoch in range(3):
        images, ids = _epoch(dataset)
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
    assert _binomial_ok(states[0].sum(), n)  # 80 +- 25
    np.testing.assert_array_equal(states[1], ~states[0])
    np.testing.assert_array_equal(states[2], states[0])
    assert len(offsets) > 10  # the 2-px translation is on (25 possible)


@requires_tensorflow
def test_pipeline_epoch_zero_mask_is_reproducible(cifar10_small):
    from keras_regkit.data import make_dataset

    x = cifar10_small[0][:64]
    first = []
    for seed in (5, 5, 6):
        images, ids = _epoch(make_dataset(x, np.arange(64), 16, True,
                                          augmentation=ALTERNATING, seed=seed))
        matches, _ = match_shift(images, x[ids])
        flipped = np.zeros(64, bool)
        flipped[ids] = matches[1]
        first.append(flipped)
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])


@requires_tensorflow
def test_pipeline_alternating_flip_composes_with_mixing(cifar10_small):
    from keras_regkit.data import make_dataset

    x, y = cifar10_small[0][:64], cifar10_small[1][:64]
    dataset = make_dataset(x, y, 16, True, augmentation=ALTERNATING,
                           mix={"cutmix_alpha": 1.0}, num_classes=10, seed=0)
    for images, labels in dataset:
        assert images.shape == (16, 32, 32, 3) and labels.shape == (16, 10)
        np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, atol=1e-5)


@requires_tensorflow
def test_pipeline_dataset_input_warns_and_flips_at_random(cifar10_small):
    import tensorflow as tf

    from keras_regkit.data import make_dataset

    x, y = cifar10_small[0][:32], cifar10_small[1][:32]
    source = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.warns(UserWarning, match="alternating"):
        dataset = make_dataset(source, None, 16, True,
                               augmentation=ALTERNATING, seed=0)
    images = np.concatenate([a.numpy() for a, _ in dataset])
    assert images.shape == (32, 32, 32, 3)
