"""Test-time augmentation views and averaging."""

import keras
import numpy as np
import pytest

from keras_regkit.training.tta import tta_predict, tta_views


def test_views_of_each_mode(cifar10_batch):
    x, _ = cifar10_batch
    assert len(tta_views(x, False)) == 1
    flip = tta_views(x, True)
    assert len(flip) == 2
    np.testing.assert_array_equal(flip[1], x[:, :, ::-1])
    full = tta_views(x, "flip_translate")
    assert len(full) == 6
    # A one-pixel diagonal shift: interior pixels move by (1, 1).
    np.testing.assert_array_equal(full[2][:, 1:, 1:], x[:, :-1, :-1])
    np.testing.assert_array_equal(full[3][:, :-1, :-1], x[:, 1:, 1:])


def test_tta_predict_is_the_mean_over_views(cifar10_batch):
    x, _ = cifar10_batch
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(4, 3)(inputs)
    h = keras.layers.GlobalMaxPooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, "softmax")(h))
    expected = np.mean([model.predict(v, verbose=0)
                        for v in tta_views(x, "flip_translate")], axis=0)
    np.testing.assert_allclose(tta_predict(model, x, tta="flip_translate"),
                               expected, atol=1e-6)


def test_unknown_mode_is_refused(cifar10_batch):
    with pytest.raises(ValueError, match="`tta`"):
        tta_views(cifar10_batch[0], "rotate")


@pytest.mark.parametrize("tta, batch_size", [
    (False, 13), ("flip", 4), ("flip_translate", 2), ("flip_translate", 100)])
def test_views_batch_by_batch_give_the_per_view_mean(tta, batch_size):
    # 13 images: batches of 4 or 2 leave a partial last batch.
    x = np.random.default_rng(3).random((13, 8, 8, 3), dtype=np.float32)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3)(inputs)
    h = keras.layers.GlobalMaxPooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(5, "softmax")(h))
    got = tta_predict(model, x, batch_size=batch_size, tta=tta)
    expected = np.mean([model.predict(v, verbose=0)
                        for v in tta_views(x, tta)], axis=0)
    assert got.shape == (13, 5) and got.dtype == np.float32
    # float32 kernels may order sums differently for other batch shapes:
    # a few float32 roundings (1.2e-7 each) on probabilities below 1.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
