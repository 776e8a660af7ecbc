"""`regkit evaluate`: the library's evaluation of a saved model."""

import keras
import numpy as np
import pytest

from keras_regkit import cli
from keras_regkit import _choices
from keras_regkit.cli import _common


def _saved_model(path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.save(path)
    return model


def test_evaluate_reports_the_accuracy_of_a_saved_model(tmp_path, capsys):
    from keras_regkit.data import load_cifar10_sample

    path = tmp_path / "m.keras"
    model = _saved_model(path)
    _, (x_val, y_val) = load_cifar10_sample()
    probs = model.predict(x_val.astype("float32") / 255, verbose=0)
    probs = (probs + model.predict(x_val[:, :, ::-1].astype("float32") / 255,
                                   verbose=0)) / 2
    expected = float((probs.argmax(-1) == np.asarray(y_val).reshape(-1)).mean())
    assert cli.main(["evaluate", str(path), "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {expected:.4f} on {len(x_val)} images" in out
    assert cli.main(["evaluate", str(tmp_path / "missing.keras")]) == 2


def test_evaluate_prints_the_builders_evaluation(tmp_path, capsys,
                                                 monkeypatch):
    from keras_regkit.training.builder import ProductionModelBuilder

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 32, 32, 3), dtype="uint8")
    y = rng.integers(0, 10, 40)
    monkeypatch.setattr(_common, "load_data",
                        lambda args: (x, y, x, y, "test fixture"))
    path = tmp_path / "m.keras"
    model = _saved_model(path)
    builder = ProductionModelBuilder((32, 32, 3), 10, "small")
    for tta in _common.TTA_CHOICES:
        result = builder.evaluate(model, x, y, tta=_common.tta_mode(tta))
        assert cli.main(["evaluate", str(path), "--tta", tta]) == 0
        out = capsys.readouterr().out
        assert (f"accuracy {result['accuracy']:.4f} on 40 images "
                f"(test fixture), tta={tta}; loss {result['loss']:.4f}") in out


def test_tta_choices_spell_false_as_none():
    assert _common.TTA_CHOICES == ("none", "flip", "flip_translate")
    assert all(_common.tta_mode(c) in _choices.TTA_MODES
               for c in _common.TTA_CHOICES)
    assert _common.tta_mode("none") is False


def test_unknown_tta_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "m.keras", "--tta", "rotate"])
    assert exc.value.code == 2
    assert "invalid choice: 'rotate'" in capsys.readouterr().err
