"""Tests for MCDropout, MCSpatialDropout2D and set_mc_dropout."""

import numpy as np
import pytest

import keras

from keras_regkit.analysis import mc_dropout_prediction
from keras_regkit.layers import MCDropout, MCSpatialDropout2D, set_mc_dropout
from tests.helpers import check_layer
from tests.helpers import random_images
from tests.helpers import save_and_reload


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "layer_cls, input_shape",
    [(MCDropout, (4, 6)), (MCSpatialDropout2D, (2, 5, 5, 3))],
    ids=["dropout", "spatial"],
)
def test_check_layer(layer_cls, input_shape, tmp_path):
    # One non-trainable weight (the MC switch); two seed generators: the
    # training stream of keras.layers.Dropout and the Monte Carlo stream.
    check_layer(
        layer_cls, dict(rate=0.3, seed=1, mc=False), input_shape, tmp_path,
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=1,
        expected_num_seed_generators=2,
    )


@pytest.mark.parametrize("mc", [False, True])
def test_training_masks_equal_keras_dropout_exactly(mc):
    x = np.random.default_rng(0).normal(size=(8, 40)).astype("float32")
    ours = MCDropout(0.4, seed=7, mc=mc)
    ref = keras.layers.Dropout(0.4, seed=7)
    for _ in range(2):
        np.testing.assert_array_equal(
            _np(ours(x, training=True)), _np(ref(x, training=True))
        )
        # Inference calls in between (e.g. validation during fit) must not
        # shift the training stream.
        out = _np(ours(x, training=False))
        if mc:
            assert np.mean(out == 0) > 0.2
        else:
            np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("mc", [False, True])
def test_spatial_training_masks_equal_keras_exactly(mc):
    x = np.random.default_rng(0).normal(size=(4, 5, 5, 16)).astype("float32")
    ours = MCSpatialDropout2D(0.5, seed=3, mc=mc)
    ref = keras.layers.SpatialDropout2D(0.5, seed=3)
    for _ in range(2):
        np.testing.assert_array_equal(
            _np(ours(x, training=True)), _np(ref(x, training=True))
        )
        out = _np(ours(x, training=False))
        if not mc:
            np.testing.assert_array_equal(out, x)


def _mlp(rate=0.3):
    inputs = keras.Input((48,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    hidden = MCDropout(rate, seed=5, mc=True)(hidden)
    return keras.Model(inputs, keras.layers.Dense(4)(hidden))


def test_mc_predictions_vary_and_average_to_deterministic():
    x = random_images(8, (48,))
    model = _mlp()
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    assert np.max(np.abs(first - second)) > 1e-3

    set_mc_dropout(model, False)
    deterministic = model.predict(x, verbose=0)
    set_mc_dropout(model, True)
    draws = 400
    samples = model.predict(np.tile(x, (draws, 1)), batch_size=800, verbose=0)
    samples = samples.reshape(draws, 8, 4)
    # Dropout feeds a linear layer, so the MC mean is unbiased: each of the
    # 32 means lies within 5 standard errors of the deterministic output.
    std = samples.std(axis=0)
    assert np.all(std > 0)
    error = np.abs(samples.mean(axis=0) - deterministic)
    assert np.all(error <= 5 * std / np.sqrt(draws) + 1e-6)


@pytest.mark.parametrize("layer_cls", [MCDropout, MCSpatialDropout2D])
def test_batch_norm_stays_in_inference_mode(layer_cls):
    x = random_images(16)
    rate = 0.5
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    bn_layer = keras.layers.BatchNormalization(name="bn")
    bn = bn_layer(conv)
    outputs = layer_cls(rate, seed=11, mc=True)(bn)
    model = keras.Model(inputs, outputs)
    both_outputs = keras.Model(inputs, [bn, outputs])
    # Moving statistics far from this batch's statistics, so inference and
    # training mode give clearly different BN outputs.
    rng = np.random.default_rng(1)
    gamma, beta = rng.uniform(0.5, 2, 8), rng.normal(size=8)
    mean, var = rng.normal(size=8), rng.uniform(0.5, 3, 8)
    bn_layer.set_weights(
        [w.astype("float32") for w in (gamma, beta, mean, var)]
    )
    pre, out = both_outputs.predict(x, verbose=0)
    np.testing.assert_allclose(_np(bn_layer.moving_mean), mean, rtol=1e-6)
    np.testing.assert_allclose(_np(bn_layer.moving_variance), var, rtol=1e-6)
    kept = out != 0
    assert abs(kept.mean() - (1 - rate)) < 0.1
    # Every kept unit is the inference-mode BN output scaled by 1/(1-rate).
    np.testing.assert_allclose(
        out[kept], pre[kept] / (1 - rate), rtol=1e-4, atol=1e-5
    )
    # The reference recipe, model(x, training=True), uses batch statistics
    # and moves the moving statistics.
    naive = _np(model(x, training=True))
    both = kept & (naive != 0)
    assert np.max(np.abs(naive[both] - out[both])) > 0.5
    assert np.max(np.abs(_np(bn_layer.moving_mean) - mean)) > 1e-3


def test_toggle_takes_effect_on_compiled_model():
    x = random_images(8, (48,))
    y = np.zeros((8, 4), "float32")
    model = _mlp(rate=0.5)
    jit = keras.backend.backend() == "tensorflow"
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
    model.fit(x, y, epochs=1, verbose=0)
    assert set_mc_dropout(model, False) == 1
    off_a = model.predict(x, verbose=0)
    off_b = model.predict(x, verbose=0)
    np.testing.assert_array_equal(off_a, off_b)
    np.testing.assert_allclose(off_a, _np(model(x)), rtol=1e-5, atol=1e-6)

    assert set_mc_dropout(model, True) == 1
    on = model.predict(x, verbose=0)
    assert np.max(np.abs(on - off_a)) > 1e-3
    assert model.evaluate(x, y, verbose=0) != model.evaluate(x, y, verbose=0)

    set_mc_dropout(model, False)
    np.testing.assert_array_equal(model.predict(x, verbose=0), off_a)


def test_fit_validation_and_evaluate_are_deterministic_by_default():
    # The numbers EarlyStopping, checkpoints and OverfittingDetector read
    # must not be resampled: by default an MC layer is plain dropout at
    # inference, and only asking (mc_dropout_prediction) samples.
    x = random_images(32, (48,))
    y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    inputs = keras.Input((48,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    layers = [MCDropout(0.5, seed=5), MCSpatialDropout2D(0.5, seed=6)]
    hidden = layers[0](hidden)
    spatial = layers[1](keras.layers.Reshape((4, 2, 2))(hidden))
    outputs = keras.layers.Dense(4)(keras.layers.Flatten()(spatial))
    model = keras.Model(inputs, outputs)
    assert [layer.mc for layer in layers] == [False, False]
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0)
    # With the weights fixed, validation equals a fresh evaluate, twice.
    first = model.evaluate(x, y, verbose=0)
    assert model.evaluate(x, y, verbose=0) == first
    np.testing.assert_allclose(history.history["val_loss"][-1], first,
                               rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    mean, std, _ = mc_dropout_prediction(model, x, n_iter=8, seed=0)
    assert std.max() > 1e-3  # sampling is still there when asked for


class _Block(keras.layers.Layer):
    """A custom layer holding an MC layer as an attribute."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.drop = MCSpatialDropout2D(0.2, seed=1)

    def call(self, inputs):
        return self.drop(inputs)


def test_set_mc_dropout_walks_nested_models():
    inner = keras.Sequential(
        [keras.Input((6, 6, 2)), MCDropout(0.1), keras.layers.Dropout(0.1)]
    )
    inputs = keras.Input((6, 6, 2))
    x = _Block()(inner(inputs))
    model = keras.Model(inputs, MCDropout(0.2, mc=False)(x))
    assert set_mc_dropout(model, True) == 3
    assert set_mc_dropout(model, False) == 3
    mc_layers = [inner.layers[0], model.layers[2].drop, model.layers[3]]
    assert [layer.mc for layer in mc_layers] == [False] * 3
    assert set_mc_dropout(keras.Sequential([keras.layers.Dense(2)]), True) == 0


@pytest.mark.parametrize("mc", [False, True])
def test_mc_state_survives_save_and_reload(mc, tmp_path):
    inputs = keras.Input((10,))
    model = keras.Model(inputs, MCDropout(0.5, seed=2, mc=not mc)(inputs))
    set_mc_dropout(model, mc)
    assert model.layers[1].get_config()["mc"] is mc
    reloaded = save_and_reload(model, tmp_path)
    assert reloaded.layers[1].mc is mc
    x = np.ones((4, 10), "float32")
    dropped = np.mean(reloaded.predict(x, verbose=0) == 0)
    assert (dropped > 0.2) if mc else (dropped == 0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_mc_drops_whole_feature_maps(data_format):
    layer = MCSpatialDropout2D(0.5, data_format=data_format, seed=4,
                               mc=True)
    x = np.ones((8, 16, 4, 4), "float32")
    if data_format == "channels_last":
        x = np.transpose(x, (0, 2, 3, 1))
    out = _np(layer(x))  # inference, MC on
    maps = out if data_format == "channels_first" else np.transpose(
        out, (0, 3, 1, 2)
    )
    per_map = maps.reshape(8, 16, -1)
    assert np.all(per_map.min(axis=2) == per_map.max(axis=2))
    assert set(np.unique(per_map)) <= {0.0, 2.0}
    assert 0.3 < np.mean(per_map == 0) < 0.7


def test_zero_rate_is_identity_in_mc_mode():
    x = np.arange(12, dtype="float32").reshape(3, 4)
    np.testing.assert_array_equal(_np(MCDropout(0.0, mc=True)(x)), x)


@pytest.mark.requires_tensorflow
def test_works_in_tf_data_map():
    import tensorflow as tf

    layer = MCDropout(0.5, seed=3, mc=True)

    def apply(batch):
        return layer(batch)  # inference call: drops only while MC is on

    x = np.ones((16, 32), "float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(16).map(apply)
    assert 0.3 < np.mean(next(iter(ds)).numpy() == 0) < 0.7
    layer.mc = False
    np.testing.assert_array_equal(next(iter(ds)).numpy(), x)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5"])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="argument `rate`"):
        MCDropout(rate)


def test_invalid_rate_spatial():
    with pytest.raises(ValueError, match="argument `rate`"):
        MCSpatialDropout2D(1.5)


def test_invalid_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        MCDropout(0.1, seed=-1)


@pytest.mark.parametrize("cls", [MCDropout, MCSpatialDropout2D])
def test_invalid_mc(cls):
    with pytest.raises(ValueError, match="argument `mc`"):
        cls(0.1, mc="yes")


def test_invalid_mc_assignment():
    layer = MCDropout(0.1)
    with pytest.raises(ValueError, match="argument `mc`"):
        layer.mc = 1


def test_invalid_data_format():
    with pytest.raises(ValueError, match="argument `data_format`"):
        MCSpatialDropout2D(0.1, data_format="NHWC")


def test_set_mc_dropout_invalid_enabled():
    with pytest.raises(ValueError, match="argument `enabled`"):
        set_mc_dropout(keras.Sequential([MCDropout(0.1)]), "on")


def test_set_mc_dropout_invalid_model():
    with pytest.raises(TypeError, match="argument `model`"):
        set_mc_dropout("model", True)
