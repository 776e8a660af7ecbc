"""Tests for ConcreteDropout and its two functions."""

import numpy as np
import pytest

import keras

from keras_regkit.layers import ConcreteDropout
from keras_regkit.layers import concrete_dropout_regularization
from keras_regkit.layers import relaxed_dropout
from tests.helpers import check_layer
from tests.helpers import random_images
from tests.helpers import require_channels_first_conv

to_numpy = keras.ops.convert_to_numpy


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _by_hand(kernel, p, input_dim, weight_reg, dropout_reg):
    p = np.float64(p)
    weight_term = weight_reg * np.sum(np.square(kernel, dtype="float64"))
    neg_entropy = p * np.log(p) + (1 - p) * np.log(1 - p)
    return weight_term / (1 - p) + dropout_reg * input_dim * neg_entropy


@pytest.mark.parametrize("p", [0.1, 0.3, 0.6])
def test_function_drops_fraction_p(p):
    x = np.ones((100, 200), dtype="float32")  # 20,000 entries
    out = to_numpy(relaxed_dropout(x, p, temperature=0.1, seed=2))
    # The soft indicator z > 0.5 exactly when a Bernoulli(p) draw drops.
    dropped = out < 0.5 / (1.0 - p)
    assert abs(dropped.mean() - p) < 0.02
    # At temperature 0.1 most entries are near 0 or 1 / (1 - p).
    near_hard = np.isclose(out, 0.0, atol=0.05) | np.isclose(
        out, 1.0 / (1.0 - p), atol=0.05)
    assert near_hard.mean() > 0.8
    assert out.min() >= 0.0 and out.max() <= 1.0 / (1.0 - p) + 1e-5


def test_regularization_function_matches_formula():
    kernel = np.random.default_rng(0).normal(size=(20, 7)).astype("float32")
    value = concrete_dropout_regularization(kernel, 0.25, 20, 1e-2, 1e-3)
    np.testing.assert_allclose(
        float(to_numpy(value)), _by_hand(kernel, 0.25, 20, 1e-2, 1e-3),
        rtol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "conv2d"])
def test_inference_equals_wrapped_layer(kind):
    x = random_images(8)
    if kind == "dense":
        x = x.reshape(8, -1)
        inner = keras.layers.Dense(10, activation="softmax")
    else:
        inner = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    layer = ConcreteDropout(inner, init_min=0.3, init_max=0.3, seed=0)
    expected = to_numpy(inner(x))
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)),
                                  expected)
    assert not np.allclose(to_numpy(layer(x, training=True)), expected,
                           atol=1e-3)


def test_layer_drops_fraction_p_of_inputs():
    # An identity kernel makes the Dense output equal its dropped inputs.
    inner = keras.layers.Dense(200, use_bias=False,
                               kernel_initializer="identity")
    layer = ConcreteDropout(inner, init_min=0.4, init_max=0.4, seed=1)
    out = to_numpy(layer(np.ones((60, 200), dtype="float32"), training=True))
    p = float(to_numpy(layer.p))
    np.testing.assert_allclose(p, 0.4, rtol=1e-5)
    assert abs(np.mean(out < 0.5 / (1.0 - p)) - p) < 0.02


def test_initial_rate_within_bounds():
    rates = []
    for seed in range(5):
        layer = ConcreteDropout(keras.layers.Dense(2), init_min=0.2,
                                init_max=0.5, seed=seed)
        layer.build((None, 3))
        p = float(to_numpy(layer.p))
        np.testing.assert_allclose(
            p, _sigmoid(float(to_numpy(layer.p_logit))), rtol=1e-6)
        rates.append(p)
    assert all(0.2 <= p <= 0.5 for p in rates)
    assert len(set(rates)) > 1


@pytest.mark.parametrize(
    "kind,shape,input_dim",
    [("dense", (4, 32), 32), ("conv2d", (4, 8, 8, 3), 3),
     ("conv2d_channels_first", (4, 5, 8, 8), 5)],
)
def test_regularization_in_model_losses(kind, shape, input_dim):
    if kind == "dense":
        inner = keras.layers.Dense(6)
    elif kind == "conv2d":
        inner = keras.layers.Conv2D(6, 3)
    else:
        require_channels_first_conv()
        inner = keras.layers.Conv2D(6, 3, data_format="channels_first")
    layer = ConcreteDropout(inner, weight_regularizer=1e-2,
                            dropout_regularizer=1e-3, init_min=0.2,
                            init_max=0.4, seed=3)
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model(np.ones(shape, dtype="float32"))
    assert len(model.losses) == 1
    expected = _by_hand(to_numpy(inner.kernel), float(to_numpy(layer.p)),
                        input_dim, 1e-2, 1e-3)
    np.testing.assert_allclose(float(to_numpy(model.losses[0])), expected,
                               rtol=1e-5)


def test_rate_is_learned_in_fit(cifar10_small):
    x, y = cifar10_small
    x = x[:256].astype("float32") / 255.0
    layer = ConcreteDropout(
        keras.layers.Dense(10, activation="softmax"),
        weight_regularizer=1e-5, dropout_regularizer=1e-4, seed=0)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.AveragePooling2D(4)(inputs)  # 8 x 8 x 3
    outputs = layer(keras.layers.Flatten()(pooled))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss="sparse_categorical_crossentropy")
    assert any(v is layer.p_logit for v in model.trainable_variables)
    before = float(to_numpy(layer.p))
    history = model.fit(x, y[:256], batch_size=64, epochs=2, verbose=0)
    after = float(to_numpy(layer.p))
    assert np.all(np.isfinite(history.history["loss"]))
    # Eight Adam steps move p by about 0.01 (0.10 -> 0.09) on every backend.
    assert abs(after - before) > 0.005
    assert 0.0 < after < 1.0


def test_check_layer(tmp_path):
    layer = check_layer(
        ConcreteDropout, dict(layer=keras.layers.Conv2D(2, 3), seed=1),
        (2, 6, 6, 3), tmp_path, expected_output_shape=(2, 4, 4, 2),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
        expected_num_losses=1,
    )
    assert layer.get_config()["temperature"] == 0.1


@pytest.mark.requires_tensorflow
def test_in_tf_data_map():
    import tensorflow as tf

    x = random_images(8)
    inner = keras.layers.Conv2D(4, 3)
    layer = ConcreteDropout(inner, seed=4)
    layer.build(x.shape)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    out = np.concatenate(list(ds.map(layer).as_numpy_iterator()))
    np.testing.assert_array_equal(out, to_numpy(inner(x)))


@pytest.mark.parametrize("name", ["weight_regularizer", "dropout_regularizer"])
def test_rejects_negative_regularizer(name):
    with pytest.raises(ValueError, match=f"argument `{name}`.*Received"):
        ConcreteDropout(keras.layers.Dense(2), **{name: -1e-3})


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="argument `temperature`"):
        ConcreteDropout(keras.layers.Dense(2), temperature=temperature)


@pytest.mark.parametrize("name,value", [("init_min", 0.0), ("init_min", 1.0),
                                        ("init_max", 1.0), ("init_max", -0.2)])
def test_rejects_init_outside_unit_interval(name, value):
    with pytest.raises(ValueError, match=f"argument `{name}`.*in \\(0, 1\\)"):
        ConcreteDropout(keras.layers.Dense(2), **{name: value})


def test_rejects_init_min_above_init_max():
    with pytest.raises(ValueError, match="argument `init_max`.*init_min=0.5"):
        ConcreteDropout(keras.layers.Dense(2), init_min=0.5, init_max=0.2)


@pytest.mark.parametrize("bad", [42, keras.layers.BatchNormalization()],
                         ids=["int", "batch_norm"])
def test_rejects_unsupported_layer(bad):
    with pytest.raises(TypeError, match="argument `layer`") as info:
        ConcreteDropout(bad)
    assert f"of type {type(bad).__name__}" in str(info.value)


def test_rejects_negative_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        ConcreteDropout(keras.layers.Dense(2), seed=-1)
