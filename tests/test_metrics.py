"""keras_regkit.metrics: TopKAccuracy and the expected calibration error."""

import keras
import numpy as np
import pytest

from keras_regkit.metrics import ExpectedCalibrationError
from keras_regkit.metrics import TopKAccuracy
from keras_regkit.metrics import expected_calibration_error
from tests.helpers import random_batch

PROBS = np.array([
    [0.1, 0.5, 0.2, 0.15, 0.05],
    [0.6, 0.1, 0.1, 0.1, 0.1],
    [0.05, 0.05, 0.1, 0.3, 0.5],
    [0.2, 0.2, 0.2, 0.2, 0.2 - 1e-3],
], dtype="float32")
LABELS = np.array([2, 0, 1, 4])
# Top-2 hits: sample 0 (label 2 is second), 1 (first), 2 miss (label 1 is
# last), 3 miss (label 4 has the lowest probability).


@pytest.mark.parametrize("one_hot", [False, True])
def test_top_k_accuracy_counts_hits(one_hot):
    labels = keras.utils.to_categorical(LABELS, 5) if one_hot else LABELS
    metric = TopKAccuracy(k=2)
    metric.update_state(labels, PROBS)
    assert float(metric.result()) == pytest.approx(0.5)
    assert metric.name == "top2_accuracy"


def test_matches_keras_sparse_and_categorical_metrics():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=64).astype("float32")
    labels = rng.integers(0, 10, size=64)
    ours = TopKAccuracy(5)
    ours.update_state(labels, probs)
    sparse = keras.metrics.SparseTopKCategoricalAccuracy(5)
    sparse.update_state(labels, probs)
    assert float(ours.result()) == pytest.approx(float(sparse.result()))
    ours.reset_state()
    ours.update_state(keras.utils.to_categorical(labels, 10), probs)
    assert float(ours.result()) == pytest.approx(float(sparse.result()))


def test_config_round_trip_and_validation():
    metric = TopKAccuracy(3, name="t3")
    clone = TopKAccuracy.from_config(metric.get_config())
    assert (clone.k, clone.name) == (3, "t3")
    with pytest.raises(ValueError, match="`k`"):
        TopKAccuracy(0)


# Expected calibration error.

# Confidences 0.95 (right), 0.75 (wrong), 0.55 (right), 0.70 (right); no
# confidence sits on a bin edge for 1 or 5 bins.
ECE_PROBS = np.array([[0.95, 0.05], [0.75, 0.25], [0.45, 0.55],
                      [0.30, 0.70]], dtype="float32")
ECE_LABELS = np.array([0, 1, 1, 1])


def test_ece_by_hand_with_five_bins():
    # Bins (0.8, 1]: {0.95 right} -> |1 - 0.95| = 0.05
    #      (0.6, 0.8]: {0.75 wrong, 0.70 right} -> |1 - 1.45| = 0.45
    #      (0.4, 0.6]: {0.55 right} -> |1 - 0.55| = 0.45
    # ECE = (0.05 + 0.45 + 0.45) / 4.
    ece = expected_calibration_error(ECE_LABELS, ECE_PROBS, n_bins=5)
    assert ece == pytest.approx(0.2375, abs=1e-6)


def test_one_bin_is_the_gap_between_accuracy_and_mean_confidence():
    ece = expected_calibration_error(ECE_LABELS, ECE_PROBS, n_bins=1)
    assert ece == pytest.approx(abs(0.75 - (0.95 + 0.75 + 0.55 + 0.70) / 4),
                                abs=1e-6)


def test_one_hot_labels_and_sample_weights():
    one_hot = np.eye(2)[ECE_LABELS]
    assert expected_calibration_error(one_hot, ECE_PROBS, n_bins=5) == (
        pytest.approx(0.2375, abs=1e-6))
    # Weight 0 on the wrong prediction: bin (0.6, 0.8] holds 0.70 right only.
    weights = np.array([1.0, 0.0, 1.0, 1.0])
    ece = expected_calibration_error(ECE_LABELS, ECE_PROBS, 5,
                                     sample_weight=weights)
    assert ece == pytest.approx((0.05 + 0.30 + 0.45) / 3, abs=1e-6)


def test_perfectly_confident_and_right_is_zero():
    probs = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    assert expected_calibration_error([0, 1, 2, 1], probs) == 0.0


def test_metric_accumulates_batches_like_the_function():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 10)) * 2
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(
        "float32")
    labels = rng.integers(0, 10, 300)
    metric = ExpectedCalibrationError()
    for start in range(0, 300, 64):
        metric.update_state(labels[start:start + 64], probs[start:start + 64])
    expected = expected_calibration_error(labels, probs)
    assert expected > 0.1
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    metric.update_state(np.eye(10)[labels], probs)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("one_hot", [False, True])
def test_metric_in_compile_fit_and_evaluate(one_hot, tmp_path):
    x, y = random_batch()
    labels = np.eye(10, dtype="float32")[y] if one_hot else y
    loss = ("categorical_crossentropy" if one_hot
            else "sparse_categorical_crossentropy")
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", loss, metrics=[ExpectedCalibrationError(n_bins=10)])
    history = model.fit(x, labels, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["ece"][0])
    result = model.evaluate(x, labels, batch_size=16, return_dict=True,
                            verbose=0)
    probs = model.predict(x, verbose=0)
    assert result["ece"] == pytest.approx(
        expected_calibration_error(y, probs, n_bins=10), abs=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    again = reloaded.evaluate(x, labels, batch_size=16, return_dict=True,
                              verbose=0)
    assert again["ece"] == pytest.approx(result["ece"], abs=1e-6)


def test_metric_config_round_trip():
    metric = ExpectedCalibrationError(n_bins=7, name="calib")
    clone = ExpectedCalibrationError.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    assert clone.n_bins == 7 and clone.name == "calib"


@pytest.mark.parametrize("n_bins", [0, 2.5])
def test_invalid_n_bins_is_rejected(n_bins):
    with pytest.raises(ValueError, match="`n_bins`"):
        ExpectedCalibrationError(n_bins=n_bins)
    with pytest.raises(ValueError, match="`n_bins`"):
        expected_calibration_error(ECE_LABELS, ECE_PROBS, n_bins=n_bins)
