"""Tests for WhiteningBiasFreezer: the whitening bias trains first only."""

import numpy as np
import pytest

import keras

from keras_regkit.callbacks import WhiteningBiasFreezer
from keras_regkit.layers import PatchWhitening
from tests.helpers import random_images


def _tiny_model(x):
    """A whitened stem, global pooling and a one-unit head on 8 x 8 images."""
    inputs = keras.Input((8, 8, 3))
    stem = PatchWhitening(name="stem")
    stem.adapt(x)
    pooled = keras.layers.GlobalAveragePooling2D()(stem(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(pooled))
    return model, stem


def test_freezer_trains_bias_only_in_first_epochs():
    x, y = random_images(32, (8, 8, 3)), np.linspace(-1, 1, 32)[:, None]
    model, stem = _tiny_model(x)
    # The stem inside a nested model: the callback must still find it.
    outer_in = keras.Input((8, 8, 3))
    outer = keras.Model(outer_in, model(outer_in))
    outer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="mse")
    seen = [stem.effective_bias]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(stem.effective_bias))
    outer.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[WhiteningBiasFreezer(epochs=1), record])
    assert np.abs(seen[1] - seen[0]).max() > 1e-4  # trained in epoch 0
    np.testing.assert_array_equal(seen[2], seen[1])
    np.testing.assert_array_equal(seen[3], seen[1])
    assert not stem.bias_trainable_now


def test_freezer_warns_without_whitening_layer():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="no PatchWhitening"):
        model.fit(np.ones((4, 4)), np.ones((4, 1)), epochs=1, verbose=0,
                  callbacks=[WhiteningBiasFreezer()])


def test_freezer_config_round_trip():
    callback = WhiteningBiasFreezer.from_config(
        WhiteningBiasFreezer(epochs=2).get_config())
    assert callback.epochs == 2


@pytest.mark.parametrize("epochs", [-1, 1.5, True])
def test_freezer_rejects_bad_epochs(epochs):
    with pytest.raises(ValueError, match="argument `epochs`"):
        WhiteningBiasFreezer(epochs=epochs)
