"""Tests for keras_regkit.data.flips: alternating flip masks (NumPy).

The tf.data form, inside `make_dataset`, is tested in test_pipeline.py.
"""

import numpy as np
import pytest

from keras_regkit.data import alternating_flip_mask
from keras_regkit.data.flips import flip_images
from tests.helpers import random_images


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


def test_flip_images_mirrors_only_masked_images():
    x = random_images(6)
    mask = np.array([True, False, True, False, False, True])
    out = flip_images(x, mask)
    np.testing.assert_array_equal(out[mask], x[mask][:, :, ::-1])
    np.testing.assert_array_equal(out[~mask], x[~mask])


def test_flip_images_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match="argument `mask`"):
        flip_images(random_images(4), np.ones(3, bool))
