"""Tests for DropBlock2D, drop_block and seed_probability."""

import numpy as np
import pytest

import keras

from keras_regkit.layers import DropBlock2D, drop_block
from keras_regkit.layers.drop_block import seed_probability
from tests.helpers import check_layer
from tests.helpers import random_images


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _dropped_maps(out, data_format):
    """Boolean (batch, channels, H, W) array of dropped units."""
    dropped = out == 0
    if data_format == "channels_last":
        dropped = np.transpose(dropped, (0, 3, 1, 2))
    return dropped


def _union_of_full_squares(dropped, block):
    """Union of all block x block all-dropped squares inside each map."""
    n, c, h, w = dropped.shape
    csum = np.zeros((n, c, h + 1, w + 1))
    csum[:, :, 1:, 1:] = dropped.cumsum(2).cumsum(3)
    sums = (csum[:, :, block:, block:] - csum[:, :, :-block, block:]
            - csum[:, :, block:, :-block] + csum[:, :, :-block, :-block])
    full = sums == block * block
    union = np.zeros_like(dropped)
    for i in range(block):
        for j in range(block):
            union[:, :, i:i + h - block + 1, j:j + w - block + 1] |= full
    return union


def _brute_force_gamma(rate, height, width, block):
    cover = lambda size: np.array(  # noqa: E731
        [min(i + 1, block, size - i, size - block + 1) for i in range(size)]
    )
    powers = np.outer(cover(height), cover(width))
    low, high = 0.0, 1.0
    for _ in range(60):
        gamma = (low + high) / 2
        if 1 - np.mean((1 - gamma) ** powers) < rate:
            low = gamma
        else:
            high = gamma
    return gamma


def test_check_layer(tmp_path):
    check_layer(
        DropBlock2D, dict(rate=0.2, block_size=3, seed=1), (2, 8, 8, 3),
        tmp_path,
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
    )


@pytest.mark.parametrize(
    "rate, height, width, block",
    [(0.1, 64, 64, 7), (0.3, 64, 64, 3), (0.5, 14, 14, 7), (0.1, 8, 8, 7),
     (0.9, 10, 12, 3), (0.2, 7, 7, 7), (0.05, 32, 32, 1)],
)
def test_seed_probability_solves_expected_fraction(rate, height, width, block):
    expected = _brute_force_gamma(rate, height, width, block)
    static = seed_probability(rate, height, width, block)  # int sizes
    assert isinstance(static, float)
    np.testing.assert_allclose(static, expected, rtol=1e-6, atol=1e-9)
    # Sizes only known at run time go through keras.ops (float32).
    dynamic = seed_probability(
        rate, keras.ops.convert_to_tensor(height),
        keras.ops.convert_to_tensor(width), block,
    )
    np.testing.assert_allclose(_np(dynamic), expected, rtol=1e-4, atol=1e-7)


def test_paper_gamma_under_drops():
    # The paper's formula ignores overlapping blocks: at rate 0.5, block 7
    # on 64x64 it gives a seed probability 18% too small.
    paper = 0.5 / 49 * 64 * 64 / 58**2
    ours = float(_np(seed_probability(0.5, 64, 64, 7)))
    assert ours > 1.15 * paper


@pytest.mark.parametrize(
    "rate, block, data_format",
    [(0.1, 7, "channels_last"), (0.25, 5, "channels_last"),
     (0.5, 7, "channels_last"), (0.3, 3, "channels_first"),
     (0.1, 7, "channels_first")],
)
def test_dropped_fraction_matches_rate(rate, block, data_format):
    shape = (4, 64, 64, 8)
    if data_format == "channels_first":
        shape = (4, 8, 64, 64)
    layer = DropBlock2D(rate, block, data_format=data_format, seed=3)
    out = _np(layer(np.ones(shape, "float32"), training=True))
    assert abs(np.mean(out == 0) - rate) < 0.03
    # Kept units are scaled by count / kept, so the sum is preserved.
    np.testing.assert_allclose(out.sum(), out.size, rtol=1e-4)


@pytest.mark.parametrize(
    "block, data_format", [(2, "channels_last"), (5, "channels_first")]
)
def test_dropped_units_form_full_blocks(block, data_format):
    shape = (4, 32, 32, 6)
    if data_format == "channels_first":
        shape = (4, 6, 32, 32)
    out = _np(drop_block(np.ones(shape, "float32"), 0.03, block, seed=9,
                         data_format=data_format))
    dropped = _dropped_maps(out, data_format)
    assert dropped.sum() >= 10 * block * block
    # Every dropped unit lies in a full block x block square of drops.
    np.testing.assert_array_equal(
        _union_of_full_squares(dropped, block), dropped
    )


def test_masks_are_per_feature_map():
    out = _np(drop_block(np.ones((4, 32, 32, 6), "float32"), 0.2, 5, seed=2))
    dropped = _dropped_maps(out, "channels_last")
    # Channels of a sample, and samples, get different masks.
    assert not np.array_equal(dropped[0, 0], dropped[0, 1])
    assert not np.array_equal(dropped[0], dropped[1])


def test_identity_at_inference():
    x = random_images(8)
    layer = DropBlock2D(0.3, 3, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)


def test_zero_rate_is_identity_in_training():
    x = random_images(4)
    out = _np(DropBlock2D(0.0, 3)(x, training=True))
    np.testing.assert_array_equal(out, x)


def test_block_larger_than_map_is_clipped_to_smaller_side():
    # A 9x9 block on 4x6 maps becomes 4x4: every drop is a full 4x4 square.
    out = _np(drop_block(np.ones((64, 4, 6, 4), "float32"), 0.3, 9, seed=5))
    dropped = _dropped_maps(out, "channels_last")
    np.testing.assert_array_equal(_union_of_full_squares(dropped, 4), dropped)
    assert abs(dropped.mean() - 0.3) < 0.05


def test_block_covering_the_map_drops_whole_feature_maps():
    out = _np(drop_block(np.ones((64, 5, 5, 8), "float32"), 0.4, 7, seed=6))
    per_map = _dropped_maps(out, "channels_last").reshape(64, 8, -1)
    assert np.all(per_map.min(axis=2) == per_map.max(axis=2))
    assert abs(per_map[:, :, 0].mean() - 0.4) < 0.08  # 512 maps


@pytest.mark.requires_tensorflow
def test_dynamic_spatial_shape_in_tf_graph():
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 4))])
    def apply(x):
        return drop_block(x, 0.2, 5, seed=1)

    out = apply(tf.ones((4, 64, 64, 4))).numpy()
    assert abs(np.mean(out == 0) - 0.2) < 0.03
    small = apply(tf.ones((2, 3, 3, 4))).numpy()
    np.testing.assert_array_equal(small, np.ones((2, 3, 3, 4)))


@pytest.mark.requires_tensorflow
def test_works_in_tf_data_map():
    import tensorflow as tf

    layer = DropBlock2D(0.2, 3, seed=4)

    def apply(batch):
        return layer(batch, training=True)

    x = random_images(16)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(16).map(apply)
    out = next(iter(ds)).numpy()
    assert abs(np.mean((out == 0) & (x != 0)) - 0.2) < 0.05


@pytest.mark.parametrize("rate", [1.0, -0.1, None])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="argument `rate`"):
        DropBlock2D(rate, 3)


@pytest.mark.parametrize("block_size", [0, -2, 2.5, "3", True])
def test_invalid_block_size(block_size):
    with pytest.raises(ValueError, match="argument `block_size`"):
        DropBlock2D(0.1, block_size)


def test_invalid_data_format():
    with pytest.raises(ValueError, match="argument `data_format`"):
        DropBlock2D(0.1, 3, data_format="NCHW")


def test_invalid_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        DropBlock2D(0.1, 3, seed="abc")
