"""Tests for keras_regkit.data.mixing: mixup and cutmix on a batch (tf)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_regkit.data import cutmix
from keras_regkit.data import mixup
from tests.helpers import random_images

pytestmark = pytest.mark.requires_tensorflow


def _one_per_class():
    """Ten distinct images, one per class, with their one-hot labels."""
    return random_images(10), np.eye(10, dtype="float32")


def test_mixup_images_match_their_labels():
    images, labels = _one_per_class()
    for seed in range(5):
        mixed, soft = mixup(images, labels, 0.4, tf.constant([seed, 1]))
        soft = soft.numpy()
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        # Each image is the label-weighted blend of the class images.
        expected = np.einsum("bk,khwc->bhwc", soft, images)
        np.testing.assert_allclose(mixed.numpy(), expected, atol=1e-5)


def test_cutmix_box_area_matches_the_label_weight():
    images, labels = _one_per_class()
    moved = 0
    for seed in range(8):
        mixed, soft = cutmix(images, labels, 1.0, tf.constant([seed, 2]))
        mixed, soft = mixed.numpy(), soft.numpy()
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        for i in range(10):
            own = soft[i, i]
            others = np.where(np.arange(10) == i, -1.0, soft[i])
            partner = int(np.argmax(others)) if own < 1 else i
            from_own = np.all(mixed[i] == images[i], axis=-1)
            from_partner = np.all(mixed[i] == images[partner], axis=-1)
            assert np.all(from_own | from_partner)  # pasted, not blended
            pasted = (from_partner & ~from_own).mean()
            ambiguous = (from_partner & from_own).mean()
            assert pasted <= 1 - own + 1e-6
            assert pasted >= 1 - own - ambiguous - 1e-6
            moved += partner != i and own < 1
    assert moved > 20
