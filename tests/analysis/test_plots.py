"""PNG plots: training diagnostics and validation curves."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_regkit.analysis.plots import plot_training_diagnostics
from keras_regkit.analysis.plots import plot_validation_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KERAS_HISTORY = {"loss": [1.5, 1.0, 0.7], "val_loss": [1.6, 1.3, 1.2],
                 "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.45, 0.6, 0.65]}
REFERENCE_HISTORY = {"train_loss": [1.5, 1.0], "val_loss": [1.6, 1.3],
                "train_acc": [0.5, 0.7], "val_acc": [0.45, 0.65]}


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == size


@pytest.mark.parametrize("history", [KERAS_HISTORY, REFERENCE_HISTORY],
                         ids=["keras_keys", "reference_recipe_keys"])
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
