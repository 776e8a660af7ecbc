"""Expected calibration error: function, stateful metric and diagram."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_regkit.analysis.calibration import ExpectedCalibrationError
from keras_regkit.analysis.calibration import expected_calibration_error
from keras_regkit.analysis.calibration import plot_reliability_diagram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Confidences 0.95 (right), 0.75 (wrong), 0.55 (right), 0.70 (right); no
# confidence sits on a bin edge for 1 or 5 bins.
PROBS = np.array([[0.95, 0.05], [0.75, 0.25], [0.45, 0.55], [0.30, 0.70]],
                 dtype="float32")
LABELS = np.array([0, 1, 1, 1])


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size


def test_ece_by_hand_with_five_bins():
    # Bins (0.8, 1]: {0.95 right} -> |1 - 0.95| = 0.05
    #      (0.6, 0.8]: {0.75 wrong, 0.70 right} -> |1 - 1.45| = 0.45
    #      (0.4, 0.6]: {0.55 right} -> |1 - 0.55| = 0.45
    # ECE = (0.05 + 0.45 + 0.45) / 4.
    ece = expected_calibration_error(LABELS, PROBS, n_bins=5)
    assert ece == pytest.approx(0.2375, abs=1e-6)


def test_one_bin_is_the_gap_between_accuracy_and_mean_confidence():
    ece = expected_calibration_error(LABELS, PROBS, n_bins=1)
    assert ece == pytest.approx(abs(0.75 - (0.95 + 0.75 + 0.55 + 0.70) / 4),
                                abs=1e-6)


def test_one_hot_labels_and_sample_weights():
    one_hot = np.eye(2)[LABELS]
    assert expected_calibration_error(one_hot, PROBS, n_bins=5) == (
        pytest.approx(0.2375, abs=1e-6))
    # Weight 0 on the wrong prediction: bin (0.6, 0.8] holds 0.70 right only.
    weights = np.array([1.0, 0.0, 1.0, 1.0])
    ece = expected_calibration_error(LABELS, PROBS, 5, sample_weight=weights)
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
def test_metric_in_compile_fit_and_evaluate(one_hot, cifar10_batch, tmp_path):
    x, y = cifar10_batch
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
        expected_calibration_error(LABELS, PROBS, n_bins=n_bins)


def test_reliability_diagram_png(tmp_path):
    path = tmp_path / "reliability.png"
    fig = plot_reliability_diagram(LABELS, PROBS, n_bins=5, path=path,
                                   title="toy")
    assert_png(path, (600, 700))
    assert fig.axes[0].get_title() == "toy (ECE 0.238)"
