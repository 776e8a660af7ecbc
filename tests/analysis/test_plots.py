"""PNG plots: training diagnostics, validation curves and learning curves."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_regkit.experiments.learning_curve import learning_curve
from keras_regkit.experiments.learning_curve import plot_learning_curves
from keras_regkit.analysis.plots import plot_training_diagnostics
from keras_regkit.analysis.plots import plot_validation_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KERAS_HISTORY = {"loss": [1.5, 1.0, 0.7], "val_loss": [1.6, 1.3, 1.2],
                 "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.45, 0.6, 0.65]}
SEED_HISTORY = {"train_loss": [1.5, 1.0], "val_loss": [1.6, 1.3],
                "train_acc": [0.5, 0.7], "val_acc": [0.45, 0.65]}


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == size


@pytest.mark.parametrize("history", [KERAS_HISTORY, SEED_HISTORY],
                         ids=["keras_keys", "seed_keys"])
def test_training_diagnostics_png(history, tmp_path):
    path = tmp_path / "curves.png"
    fig = plot_training_diagnostics(history, path)
    assert_png(path, (1000, 400))
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == 2 and len(ax_acc.lines) == 2
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(),
                               history.get("val_accuracy",
                                           history.get("val_acc")))


def test_training_diagnostics_reads_a_history_object(tmp_path, capsys):
    history = keras.callbacks.History()
    history.history = KERAS_HISTORY
    plot_training_diagnostics(history, tmp_path / "c.png", verbose=True)
    assert "gap: 0.2500 (overfitting)" in capsys.readouterr().out


def test_validation_curves_png(tmp_path):
    path = tmp_path / "validation.png"
    other = {"val_loss": [1.5, 1.1, 1.0, 0.9],
             "val_accuracy": [0.5, 0.6, 0.7, 0.72]}
    fig = plot_validation_curves({"preset": KERAS_HISTORY, "no_dropout":
                                  other}, path, title="ablations")
    assert_png(path, (1000, 400))
    ax_acc, ax_loss = fig.axes
    assert [line.get_label() for line in ax_acc.lines] == ["preset",
                                                          "no_dropout"]
    np.testing.assert_allclose(ax_loss.lines[1].get_ydata(),
                               other["val_loss"])


def _data(cifar10_small):
    x, y = cifar10_small
    return x[:150].astype("float32") / 255.0, y[:150]


def _make_model():
    model = keras.Sequential([keras.Input((32, 32, 3)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_learning_curve_numbers(cifar10_small):
    x, y = _data(cifar10_small)
    curve = learning_curve(_make_model, x, y, train_sizes=(0.5, 1.0),
                           n_repeats=2, epochs=1, validation_fraction=0.2,
                           seed=0)
    # 150 images: 30 held out, 60 and 120 for training.
    assert curve["train_sizes"] == [60, 120]
    for key in ("train_mean", "val_mean"):
        assert all(0.0 <= v <= 1.0 for v in curve[key])
    assert all(v >= 0.0 for v in curve["train_std"] + curve["val_std"])


def test_learning_curves_png_from_a_compiled_model(cifar10_small, tmp_path,
                                                   capsys):
    x, y = _data(cifar10_small)
    model = _make_model()
    weights = [w.copy() for w in model.get_weights()]
    path = tmp_path / "learning.png"
    fig = plot_learning_curves(model, x[:100], y[:100], x[100:], y[100:],
                               train_sizes=(0.5, 1.0), n_repeats=1,
                               epochs=1, seed=0, path=path, verbose=True)
    assert_png(path, (800, 500))
    assert fig.learning_curve["train_sizes"] == [50, 100]
    assert "Final train-val accuracy gap" in capsys.readouterr().out
    for old, new in zip(weights, model.get_weights()):  # never trained
        np.testing.assert_array_equal(old, new)


def test_default_sizes_are_the_seeds_ten_steps(monkeypatch):
    seen = []

    def fake_fit(self, x, y, **kwargs):
        seen.append(len(x))

    monkeypatch.setattr(keras.Model, "fit", fake_fit)
    monkeypatch.setattr(keras.Model, "predict",
                        lambda self, x, **kwargs: np.zeros((len(x), 2)))
    x = np.zeros((100, 2), "float32")
    y = np.zeros(100, "int64")
    model_fn = lambda: keras.Sequential([keras.Input((2,)),  # noqa: E731
                                         keras.layers.Dense(2)])
    curve = learning_curve(model_fn, x, y, x, y, n_repeats=1, epochs=1)
    assert seen == curve["train_sizes"] == list(range(10, 101, 10))


def test_an_uncompiled_model_is_rejected():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="compiled"):
        learning_curve(model, np.zeros((10, 2)), np.zeros(10), epochs=1)


@pytest.mark.parametrize("sizes", [(0.0, 1.0), (0.5, 1.5)])
def test_train_sizes_must_be_fractions(sizes):
    with pytest.raises(ValueError, match="`train_sizes`"):
        learning_curve(_make_model, np.zeros((10, 2)), np.zeros(10),
                       train_sizes=sizes)
