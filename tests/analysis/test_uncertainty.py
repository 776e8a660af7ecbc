"""Monte Carlo dropout: only dropout samples, vectorized, on any dropout layer."""

import keras
import numpy as np
import pytest

from keras_regkit.analysis.uncertainty import classify_with_uncertainty
from keras_regkit.analysis.uncertainty import mc_dropout_prediction
from keras_regkit.analysis.uncertainty import mutual_information
from keras_regkit.analysis.uncertainty import predictive_entropy
from keras_regkit.layers.concrete_dropout import ConcreteDropout
from keras_regkit.layers.drop_block import DropBlock2D
from keras_regkit.layers.mc_dropout import MCDropout, MCSpatialDropout2D


def bn_model(rate, softmax=False, seed=None, train=True):
    """Dense -> BN -> ReLU -> Dropout -> Dense, trained a few steps.

    The inputs have mean 3 and scale 2, and BN's moving statistics start
    at (0, 1) with momentum 0.99, so after a few steps they are far from
    any batch's statistics: training-mode batch norm gives other outputs.
    """
    inputs = keras.Input((8,))
    x = keras.layers.Dense(32)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(rate, seed=seed)(x)
    activation = "softmax" if softmax else None
    outputs = keras.layers.Dense(4, activation=activation)(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy" if softmax
                  else "mse")
    rng = np.random.default_rng(0)
    x_data = (3 + 2 * rng.normal(size=(128, 8))).astype("float32")
    y_data = (rng.integers(0, 4, 128) if softmax
              else rng.normal(size=(128, 4)).astype("float32"))
    if train:
        model.fit(x_data, y_data, epochs=1, batch_size=32, verbose=0)
    return model, x_data[:16]


@pytest.fixture(scope="module")
def trained():
    """A trained softmax BN model shared by the tests that only predict."""
    keras.utils.set_random_seed(0)
    return bn_model(0.3, softmax=True)


def test_shapes_and_summary_statistics(trained):
    model, x = trained
    mean, std, samples = mc_dropout_prediction(model, x, n_iter=20, seed=0)
    assert samples.shape == (20, 16, 4)
    assert mean.shape == std.shape == (16, 4)
    np.testing.assert_allclose(mean, samples.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, samples.std(0), rtol=1e-6)
    np.testing.assert_allclose(samples.sum(-1), 1.0, atol=1e-5)
    assert std.mean() > 1e-3  # the passes differ


def test_batch_norm_stays_in_inference_mode_exactly():
    # With a 0 rate dropout, every pass must be the deterministic prediction;
    # the training-mode recipe normalizes with batch statistics instead.
    model, x = bn_model(0.0)
    deterministic = model.predict(x, verbose=0)
    mean, std, samples = mc_dropout_prediction(model, x, n_iter=5,
                                               batch_size=7)
    np.testing.assert_allclose(samples, np.broadcast_to(deterministic,
                                                        samples.shape),
                               rtol=1e-5, atol=1e-5)
    assert std.max() < 1e-5
    training_mode = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.abs(training_mode - deterministic).max() > 0.1


def test_mc_mean_approaches_the_deterministic_prediction_not_the_recipe():
    # Inverted dropout followed by a linear layer is unbiased: the mean of
    # the passes converges to the inference output when BN is in inference
    # mode. The `model(x, training=True)` recipe converges elsewhere.
    model, x = bn_model(0.2, seed=3)
    deterministic = model.predict(x, verbose=0)
    n_iter = 2000
    mean, std, _ = mc_dropout_prediction(model, x, n_iter=n_iter, seed=1)
    tolerance = 5 * std.max() / np.sqrt(n_iter)  # 5 standard errors
    ours = np.abs(mean - deterministic).max()
    recipe = np.mean([keras.ops.convert_to_numpy(model(x, training=True))
                      for _ in range(50)], axis=0)
    theirs = np.abs(recipe - deterministic).max()
    assert ours < tolerance
    assert theirs > 10 * tolerance


def test_the_model_is_left_unchanged():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = MCDropout(0.5, mc=False, seed=1)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile("adam", "mse")
    data = np.random.default_rng(0).normal(size=(10, 8)).astype("float32")
    before = model.predict(data, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    _, std, _ = mc_dropout_prediction(model, data, n_iter=10)
    assert std.max() > 0  # MCDropout samples here even with mc=False
    np.testing.assert_array_equal(model.predict(data, verbose=0), before)
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert model.layers[3].mc is False
    assert model.compiled


def _with(layer, input_shape):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs) if len(
        input_shape) == 3 else keras.layers.Dense(6)(inputs)
    x = layer(x)
    x = keras.layers.Flatten()(x) if len(input_shape) == 3 else x
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize(
    "make_layer, input_shape",
    [
        (lambda: keras.layers.Dropout(0.3), (5,)),
        (lambda: keras.layers.GaussianDropout(0.3), (5,)),
        (lambda: keras.layers.AlphaDropout(0.3), (5,)),
        (lambda: keras.layers.SpatialDropout2D(0.3), (6, 6, 2)),
        (lambda: MCDropout(0.3, mc=False), (5,)),
        (lambda: MCSpatialDropout2D(0.3, mc=False), (6, 6, 2)),
        (lambda: DropBlock2D(0.3, block_size=3), (6, 6, 2)),
        (lambda: ConcreteDropout(keras.layers.Dense(4), init_min=0.3,
                                 init_max=0.3), (5,)),
    ],
    ids=["Dropout", "GaussianDropout", "AlphaDropout", "SpatialDropout2D",
         "MCDropout", "MCSpatialDropout2D", "DropBlock2D", "ConcreteDropout"],
)
def test_keras_and_keras_regkit_dropout_layers_are_sampled(make_layer,
                                                           input_shape):
    model = _with(make_layer(), input_shape)
    x = np.random.default_rng(0).uniform(size=(6,) + input_shape).astype(
        "float32")
    deterministic = model.predict(x, verbose=0)
    _, std, samples = mc_dropout_prediction(model, x, n_iter=8, seed=0)
    assert samples.shape == (8, 6, 3)
    assert std.max() > 1e-4
    np.testing.assert_allclose(model.predict(x, verbose=0), deterministic)


def test_nested_and_sequential_models():
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6),
                              keras.layers.Dropout(0.5)], name="inner")
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    x = np.ones((3, 5), "float32")
    _, std, samples = mc_dropout_prediction(model, x, n_iter=6, seed=0)
    assert samples.shape == (6, 3, 2) and std.max() > 0


def test_one_vectorized_predict_call(monkeypatch, trained):
    model, x = trained
    calls = []
    original = keras.Model.predict

    def counting_predict(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", counting_predict)
    mc_dropout_prediction(model, x, n_iter=50, batch_size=64)
    assert len(calls) == 1


def test_seeded_runs_repeat_and_differ_by_seed(trained):
    model, x = trained
    first = mc_dropout_prediction(model, x, n_iter=10, seed=5)[2]
    again = mc_dropout_prediction(model, x, n_iter=10, seed=5)[2]
    other = mc_dropout_prediction(model, x, n_iter=10, seed=6)[2]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_a_mask_shared_across_the_batch_falls_back_to_separate_passes():
    inputs = keras.Input((6,))
    x = keras.layers.Dropout(0.5, noise_shape=(1, 6))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    data = np.ones((4, 6), "float32")
    _, _, samples = mc_dropout_prediction(model, data, n_iter=6, seed=0)
    assert samples.shape == (6, 4, 2)
    # One mask per pass: the four identical inputs agree within a pass...
    np.testing.assert_allclose(
        samples, np.broadcast_to(samples[:, :1], samples.shape), atol=1e-6)
    # ...and the passes differ.
    assert samples[:, 0].std(0).max() > 0


def test_models_without_dropout_are_rejected():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no dropout layer"):
        mc_dropout_prediction(model, np.ones((2, 3)), n_iter=2)


def test_subclassed_models_get_a_clear_message():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)
            self.drop = keras.layers.Dropout(0.5)

        def call(self, x, training=False):
            return self.dense(self.drop(x, training=training))

    model = Net()
    model(np.ones((1, 3)))
    with pytest.raises(ValueError, match="set_mc_dropout"):
        mc_dropout_prediction(model, np.ones((2, 3)), n_iter=2)


@pytest.mark.parametrize("kwargs, name", [({"n_iter": 0}, "n_iter"),
                                          ({"batch_size": 0}, "batch_size"),
                                          ({"seed": -1}, "seed")])
def test_invalid_arguments(kwargs, name):
    model, x = bn_model(0.3, train=False)
    with pytest.raises(ValueError, match=f"`{name}`"):
        mc_dropout_prediction(model, x, **kwargs)


def test_entropy_and_mutual_information_by_hand():
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])   # two sure, opposite
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])      # two unsure, same
    assert predictive_entropy(disagree.mean(0))[0] == pytest.approx(np.log(2))
    assert mutual_information(disagree)[0] == pytest.approx(np.log(2))
    assert predictive_entropy(agree.mean(0))[0] == pytest.approx(np.log(2))
    assert mutual_information(agree)[0] == pytest.approx(0.0, abs=1e-12)


def test_classify_with_uncertainty_keys_and_consistency(trained):
    model, x = trained
    result = classify_with_uncertainty(model, x, n_iter=30, threshold=0.05,
                                       seed=0)
    mean, std, samples = mc_dropout_prediction(model, x, n_iter=30, seed=0)
    rows = np.arange(len(x))
    np.testing.assert_array_equal(result["predicted_class"], mean.argmax(-1))
    np.testing.assert_allclose(result["probability"], mean.max(-1))
    np.testing.assert_allclose(result["uncertainty"],
                               std[rows, mean.argmax(-1)])
    np.testing.assert_array_equal(result["low_confidence"],
                                  result["uncertainty"] > 0.05)
    np.testing.assert_allclose(result["predictive_entropy"],
                               predictive_entropy(mean))
    np.testing.assert_allclose(result["mutual_information"],
                               mutual_information(samples))
    assert np.all(result["mutual_information"]
                  <= result["predictive_entropy"] + 1e-9)


def test_classify_rejects_a_negative_threshold():
    model, x = bn_model(0.3, softmax=True, train=False)
    with pytest.raises(ValueError, match="`threshold`"):
        classify_with_uncertainty(model, x, n_iter=2, threshold=-0.1)


@pytest.mark.slow
def test_noise_images_are_more_uncertain_than_cifar10(cifar10_small):
    x, y = cifar10_small
    x = x.astype("float32") / 255.0
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x[:800], y[:800], epochs=4, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.15  # it learned something
    noise = np.random.default_rng(0).uniform(size=(100, 32, 32, 3)).astype(
        "float32")
    seen = x[:100]  # CIFAR-10 images the model was trained on
    on_noise = classify_with_uncertainty(model, noise, n_iter=30, seed=0)
    on_seen = classify_with_uncertainty(model, seen, n_iter=30, seed=0)
    # Epistemic uncertainty: the dropout passes disagree more off the data
    # than on the images training (under dropout) made them agree on. The
    # mutual information, their disagreement, measures it; the predictive
    # entropy (noise / CIFAR-10 ratio 0.74-1.03) and the std of the top
    # class (0.99-3.1) do not separate the two reliably. The ratio depends
    # on the trained weights, which another CPU's rounding changes as a new
    # seed does: over 29 trainings (9 to 11 seeds on each of TensorFlow,
    # JAX and PyTorch, one CPU) it ranged from 1.41 to 4.16, its logarithm
    # 0.97 +- 0.30, so the threshold 1 lies 3.2 standard deviations below.
    # A model whose passes agree as much off the data as on it fails.
    ratio = (on_noise["mutual_information"].mean()
             / on_seen["mutual_information"].mean())
    assert ratio > 1.0
