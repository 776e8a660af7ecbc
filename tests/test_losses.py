"""Tests for keras_regkit.losses: label-smoothing cross-entropy."""

import re

import numpy as np
import pytest

import keras
from keras import ops

from keras_regkit import losses
from keras_regkit.losses import LabelSmoothingCrossEntropy
from keras_regkit.losses import label_smoothing_cross_entropy
from keras_regkit.losses import label_smoothing_loss
from keras_regkit.losses import smooth_labels
from tests.helpers import random_batch
from tests.helpers import roundtrip_config
from tests.helpers import save_and_reload

EPS = 0.1


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture
def logits_and_labels():
    """Logits of 64 images (with labels) under a fixed random projection."""
    x, y = random_batch()
    proj = np.random.default_rng(0).normal(size=(32 * 32 * 3, 10))
    logits = (x.reshape(len(x), -1) - 0.5) @ proj / 20.0
    return logits.astype("float32"), y


def _keras_probs(logits):
    """Probabilities normalized and clipped exactly as Keras does."""
    p = logits - logits.max(-1, keepdims=True)
    p = np.exp(p) / np.exp(p).sum(-1, keepdims=True)
    p = p.astype("float32")
    eps = keras.config.epsilon()
    return np.clip(p / p.sum(-1, keepdims=True), eps, 1 - eps)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_one_hot_matches_keras_and_torch(logits_and_labels, from_logits,
                                         epsilon):
    logits, y = logits_and_labels
    one_hot = np.eye(10, dtype="float32")[y]
    pred = logits if from_logits else _np(ops.softmax(logits))
    ours = LabelSmoothingCrossEntropy(epsilon, from_logits=from_logits)
    keras_loss = keras.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=epsilon
    )
    # PyTorch's cross-entropy is the independent reference; the test extra
    # does not install torch (tests/run_all.py says how to add it).
    torch = pytest.importorskip("torch")
    torch_in = logits if from_logits else np.log(_keras_probs(logits))
    torch_loss = torch.nn.functional.cross_entropy(
        torch.tensor(torch_in), torch.tensor(one_hot), label_smoothing=epsilon
    )
    value = float(ours(one_hot, pred))
    np.testing.assert_allclose(value, float(keras_loss(one_hot, pred)),
                               rtol=1e-5)
    np.testing.assert_allclose(value, torch_loss.item(), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_integer_labels_match_torch_and_one_hot(logits_and_labels, from_logits,
                                                label_shape):
    logits, y = logits_and_labels
    labels = y if label_shape == "flat" else y[:, None]
    pred = logits if from_logits else _np(ops.softmax(logits))
    loss = LabelSmoothingCrossEntropy(EPS, from_logits=from_logits,
                                      reduction=None)
    per_sample = _np(loss(labels, pred))
    torch = pytest.importorskip("torch")
    torch_in = logits if from_logits else np.log(_keras_probs(logits))
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(torch_in), torch.tensor(y), label_smoothing=EPS,
        reduction="none",
    ).numpy()
    assert per_sample.shape == (64,)
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)
    dense = _np(loss(np.eye(10, dtype="float32")[y], pred))
    np.testing.assert_allclose(per_sample, dense, rtol=1e-5)


def test_soft_labels_are_plain_cross_entropy_of_smoothed_targets(
        logits_and_labels):
    logits, y = logits_and_labels
    eye = np.eye(10, dtype="float32")
    lam = np.random.default_rng(1).beta(0.4, 0.4, size=(64, 1))
    soft = (lam * eye[y] + (1 - lam) * eye[np.roll(y, 1)]).astype("float32")
    ours = LabelSmoothingCrossEntropy(EPS, from_logits=True)(soft, logits)
    plain = keras.losses.CategoricalCrossentropy(from_logits=True)(
        smooth_labels(soft, EPS), logits
    )
    np.testing.assert_allclose(float(ours), float(plain), rtol=1e-6)


def test_smooth_labels_values_and_sums():
    y = np.array([[0, 1, 0, 0], [0.25, 0.25, 0.5, 0]], "float32")
    out = _np(smooth_labels(y, 0.2))
    np.testing.assert_allclose(out, 0.8 * y + 0.05, rtol=1e-6)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)
    ints = _np(smooth_labels(np.array([2, 0]), 0.2, num_classes=4))
    np.testing.assert_allclose(ints[0], [0.05, 0.05, 0.85, 0.05], rtol=1e-6)
    np.testing.assert_allclose(ints.sum(-1), 1.0, rtol=1e-6)


def test_smooth_labels_integer_labels_need_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        smooth_labels(np.array([1, 2]), 0.1)


def test_smooth_labels_num_classes_mismatch():
    with pytest.raises(ValueError, match="num_classes"):
        smooth_labels(np.eye(3, dtype="float32"), 0.1, num_classes=5)


def test_integer_path_never_builds_one_hot(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("ops.one_hot must not be called")

    monkeypatch.setattr(keras.ops, "one_hot", forbidden)
    monkeypatch.setattr(losses.ops, "one_hot", forbidden)
    classes, batch = 50_000, 4
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(batch, classes)).astype("float32")
    y = rng.integers(0, classes, size=batch)
    value = _np(label_smoothing_cross_entropy(y, logits, EPS,
                                              from_logits=True))
    z = logits.astype("float64")
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = (-(1 - EPS) * log_p[np.arange(batch), y]
                - EPS / classes * log_p.sum(-1))
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_channels_first_axis_matches_channels_last(logits_and_labels):
    logits, y = logits_and_labels
    maps = logits.reshape(4, 16, 10).transpose(0, 2, 1)  # (4, 10, 16)
    labels = y.reshape(4, 16)
    first = label_smoothing_cross_entropy(labels, maps, EPS, True, axis=1)
    last = label_smoothing_cross_entropy(labels, maps.transpose(0, 2, 1),
                                         EPS, True)
    np.testing.assert_allclose(_np(first), _np(last), rtol=1e-6)


def test_seed_function_is_batch_mean(logits_and_labels):
    logits, y = logits_and_labels
    probs = _np(ops.softmax(logits))
    one_hot = np.eye(10, dtype="float32")[y]
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(
        one_hot, probs)
    value = label_smoothing_loss(one_hot, probs, epsilon=0.2)
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-6)


def test_label_smoothing_alias():
    assert LabelSmoothingCrossEntropy(label_smoothing=0.2).epsilon == 0.2
    assert LabelSmoothingCrossEntropy(0.2, label_smoothing=0.2).epsilon == 0.2
    assert LabelSmoothingCrossEntropy().epsilon == 0.1


def test_epsilon_and_label_smoothing_disagree():
    with pytest.raises(ValueError, match="`epsilon` and `label_smoothing`"):
        LabelSmoothingCrossEntropy(epsilon=0.1, label_smoothing=0.2)


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_epsilon_outside_unit_interval(value):
    with pytest.raises(ValueError, match="argument `epsilon`"):
        LabelSmoothingCrossEntropy(epsilon=value)


def test_label_smoothing_outside_unit_interval():
    with pytest.raises(ValueError, match="argument `label_smoothing`"):
        LabelSmoothingCrossEntropy(label_smoothing=1.5)


@pytest.mark.parametrize("value", [1.5, "last", True])
def test_bad_axis_type(value):
    with pytest.raises(ValueError, match="argument `axis`"):
        LabelSmoothingCrossEntropy(axis=value)


def test_bad_from_logits():
    with pytest.raises(ValueError, match="argument `from_logits`"):
        LabelSmoothingCrossEntropy(from_logits="yes")


def test_bad_sparse():
    with pytest.raises(ValueError, match="argument `sparse`"):
        LabelSmoothingCrossEntropy(sparse=1)


@pytest.mark.parametrize(
    "true_shape, sparse",
    [((4, 3), None), ((3,), None), ((4, 5), True), ((4,), False)],
)
def test_bad_label_shapes(true_shape, sparse):
    loss = LabelSmoothingCrossEntropy(sparse=sparse)
    y_pred = np.full((4, 5), 0.2, "float32")
    y_true = np.zeros(true_shape, "float32")
    pattern = (rf"y_true.shape={re.escape(str(true_shape))}, "
               r"y_pred.shape=\(4, 5\)")
    with pytest.raises(ValueError, match=pattern):
        loss(y_true, y_pred)


def test_axis_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        LabelSmoothingCrossEntropy(axis=2)(np.zeros((4,)), np.ones((4, 5)))


def test_integer_typed_one_hot_is_dense():
    one_hot = np.eye(5, dtype="int32")[[0, 3]]
    pred = np.full((2, 5), 0.2, "float32")
    value = _np(label_smoothing_cross_entropy(one_hot, pred, 0.0))
    np.testing.assert_allclose(value, -np.log(0.2), rtol=1e-6)


def test_reduction_and_sample_weight(logits_and_labels):
    logits, y = logits_and_labels
    per_sample = _np(LabelSmoothingCrossEntropy(
        from_logits=True, reduction="none")(y, logits))
    weights = np.linspace(0, 1, 64).astype("float32")
    total = LabelSmoothingCrossEntropy(from_logits=True, reduction="sum")(
        y, logits, sample_weight=weights)
    np.testing.assert_allclose(float(total), (per_sample * weights).sum(),
                               rtol=1e-5)


def test_config_round_trip_and_serialization():
    loss = LabelSmoothingCrossEntropy(0.2, from_logits=True, sparse=True,
                                      reduction="sum", name="ls")
    clone = roundtrip_config(loss)
    assert clone.epsilon == 0.2 and clone.sparse is True
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, LabelSmoothingCrossEntropy)
    assert restored.get_config() == loss.get_config()


def _cifar_model(units=10):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(units,
                                                  activation="softmax")(x))


def test_saturated_softmax_matches_keras_in_a_model():
    x, y = random_batch()
    model = _cifar_model()
    dense = model.layers[-1]
    dense.kernel.assign(_np(dense.kernel) * 400.0)  # saturate the softmax
    one_hot = np.eye(10, dtype="float32")[y]
    model.compile(loss=keras.losses.CategoricalCrossentropy(
        label_smoothing=EPS))
    expected = model.evaluate(x, one_hot, verbose=0)
    model.compile(loss=LabelSmoothingCrossEntropy(EPS))
    np.testing.assert_allclose(model.evaluate(x, one_hot, verbose=0),
                               expected, rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected,
                               rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_keras_save_and_reload_compiled_model(tmp_path):
    x, y = random_batch()
    model = _cifar_model()
    model.compile(optimizer="adam", loss=LabelSmoothingCrossEntropy(0.2))
    before = model.evaluate(x, y, verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    assert isinstance(reloaded.loss, LabelSmoothingCrossEntropy)
    assert reloaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(reloaded.evaluate(x, y, verbose=0), before,
                               rtol=1e-6)


def _jit_variants():
    return [False, True] if keras.backend.backend() == "tensorflow" else [
        False]


@pytest.mark.slow
@pytest.mark.parametrize("jit_compile", _jit_variants())
@pytest.mark.parametrize("labels", ["integer", "one_hot"])
def test_trains_under_fit(cifar10_batch, jit_compile, labels):
    x, y = cifar10_batch
    targets = y if labels == "integer" else np.eye(10, dtype="float32")[y]
    model = _cifar_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=LabelSmoothingCrossEntropy(EPS),
                  jit_compile=jit_compile)
    history = model.fit(x, targets, batch_size=32, epochs=4, verbose=0,
                        shuffle=False)
    loss = history.history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < loss[0]

