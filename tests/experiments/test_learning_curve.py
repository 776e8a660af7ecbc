"""learning_curve and plot_learning_curves: accuracy against training size."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_regkit.experiments.learning_curve import learning_curve
from keras_regkit.experiments.learning_curve import plot_learning_curves
from tests.helpers import random_batch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == size


def _data():
    return random_batch(150)


def _make_model():
    model = keras.Sequential([keras.Input((32, 32, 3)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_learning_curve_numbers():
    x, y = _data()
    curve = learning_curve(_make_model, x, y, train_sizes=(0.5, 1.0),
                           n_repeats=2, epochs=1, validation_fraction=0.2,
                           seed=0)
    # 150 images: 30 held out, 60 and 120 for training.
    assert curve["train_sizes"] == [60, 120]
    for key in ("train_mean", "val_mean"):
        assert all(0.0 <= v <= 1.0 for v in curve[key])
    assert all(v >= 0.0 for v in curve["train_std"] + curve["val_std"])


def test_learning_curves_png_from_a_compiled_model(tmp_path, capsys):
    x, y = _data()
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
