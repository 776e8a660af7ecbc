"""What the subcommands share: integer flags, data limits, model loading."""

import argparse
import types

import numpy as np
import pytest

from keras_regkit.cli import _common


@pytest.mark.parametrize("text", ["0", "-3", "big", "1.5", ""])
def test_positive_int_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError,
                       match="expected a positive integer"):
        _common.positive_int(text)


def test_positive_int_parses():
    assert _common.positive_int("12") == 12


@pytest.mark.parametrize("limit, count", [(None, 10), (3, 3), (50, 10)])
def test_limit_cuts_training_and_validation(monkeypatch, limit, count):
    x = np.zeros((10, 2))
    monkeypatch.setattr(_common, "load_data",
                        lambda args: (x, x[:, 0], x, x[:, 0], "fixture"))
    data = _common.load_limited_data(types.SimpleNamespace(limit=limit))
    assert [len(a) for a in data[:4]] == [count] * 4
    assert data[4] == "fixture"


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        _common.load_model(tmp_path / "nope.keras")


def _with_optimizer_module(source, target, module):
    """Copies the `.keras` file `source` to `target`, its optimizer's module
    replaced by `module`."""
    import json
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["optimizer"]["module"] = module
                data = json.dumps(config).encode()
            new.writestr(item, data)


def test_a_model_compiled_on_a_backend_not_installed_here_loads(tmp_path):
    # A model compiled on PyTorch names its optimizer's class by a module of
    # Keras's PyTorch backend (keras.src.backend.torch.optimizers.torch_sgd),
    # which cannot be imported where torch is not installed. A module that
    # cannot be imported anywhere stands in for it.
    import keras

    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "trained.keras")
    path = tmp_path / "elsewhere.keras"
    _with_optimizer_module(tmp_path / "trained.keras", path,
                           "keras.src.backend.not_installed.optimizers")
    with pytest.raises(Exception, match="not_installed"):
        keras.saving.load_model(path)   # what the commands must not do
    loaded = _common.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6,
                               atol=1e-7)
