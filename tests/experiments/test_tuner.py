"""KerasTuner integration (KerasTuner itself is optional)."""

import sys
import types

import keras
import numpy as np
import pytest

from keras_regkit._walk import walk_layers
from keras_regkit.experiments import tuner
from tests.helpers import random_batch

# The hypermodel trains through the builder's tf.data pipeline. Small
# synthetic images: what is tested is the wiring, not what is learned.
IMAGE = (16, 16, 3)


class FakeHyperParameters:
    """Records the search space; returns the lowest value of each range."""

    def __init__(self):
        self.space = {}

    def Float(self, name, min_value, max_value, step=None, sampling="linear"):
        self.space[name] = ("float", min_value, max_value, step, sampling)
        return min_value

    def Choice(self, name, values):
        self.space[name] = ("choice", tuple(values))
        return values[-1]


@pytest.fixture
def fake_keras_tuner(monkeypatch):
    module = types.ModuleType("keras_tuner")

    class HyperModel:
        def __init__(self, name=None, tunable=True):
            self.name, self.tunable = name, tunable

    module.HyperModel = HyperModel
    monkeypatch.setitem(sys.modules, "keras_tuner", module)
    monkeypatch.setattr(tuner, "_HYPERMODEL_CLASS", None)
    yield module
    tuner._HYPERMODEL_CLASS = None


def test_default_search_space_covers_the_regularization_fields():
    hp = FakeHyperParameters()
    preset = tuner.sample_preset(hp, "small")
    assert set(hp.space) == {"dropout_dense", "dropout_conv", "weight_decay",
                             "label_smoothing", "augmentation", "mixup_alpha"}
    assert hp.space["weight_decay"][-1] == "log"
    assert preset.dropout_dense == 0.0 and preset.weight_decay == 1e-4
    assert preset.augmentation == "standard" and preset.mixup_alpha == 0.4
    assert preset.conv_filters == (32, 64)  # the rest is the preset's


def test_l2_mode_presets_search_l2_instead_of_weight_decay():
    from keras_regkit.models.presets import get_preset

    hp = FakeHyperParameters()
    preset = tuner.sample_preset(
        hp, get_preset("small", weight_decay_mode="l2"))
    assert "l2" in hp.space and "weight_decay" not in hp.space
    assert preset.l2 == 1e-6


def test_custom_search_space():
    hp = FakeHyperParameters()
    preset = tuner.sample_preset(
        hp, "medium", {"dropout_dense": ("float", 0.2, 0.5, 0.1, "linear")})
    assert list(hp.space) == ["dropout_dense"]
    assert preset.dropout_dense == 0.2 and preset.dropout_conv == 0.2


@pytest.mark.parametrize(
    "space, match",
    [({"dropout": ("float", 0, 1, None, "linear")}, "preset fields"),
     ({"dropout_dense": ("uniform", 0, 1)}, "search_space"),
     ({}, "search_space")],
)
def test_invalid_search_spaces(space, match):
    with pytest.raises(ValueError, match=match):
        tuner.sample_preset(FakeHyperParameters(), "small", space)


def test_a_clear_import_error_without_keras_tuner(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_tuner", None)
    monkeypatch.setattr(tuner, "_HYPERMODEL_CLASS", None)
    with pytest.raises(ImportError, match=r"keras_regkit\[tuner\]"):
        tuner.make_hypermodel("small")
    with pytest.raises(ImportError, match="KerasTuner"):
        tuner.RegularizationHyperModel  # noqa: B018


def test_hypermodel_builds_and_fits_a_sampled_preset(fake_keras_tuner):
    x, y = random_batch(64, IMAGE)
    # tf.data on TensorFlow; on JAX and PyTorch the TensorFlow-free path,
    # with the sampled policy as model layers (flips or 2-pixel shifts).
    on_tf = keras.backend.backend() == "tensorflow"
    space = dict(tuner.DEFAULT_SEARCH_SPACE)
    if not on_tf:
        space["augmentation"] = ("choice", ("none", "flip",
                                            "flip_translate2"))
    hypermodel = tuner.make_hypermodel(
        "small", IMAGE, 10, search_space=space, seed=0,
        loader="tf.data" if on_tf else "arrays",
        augment_on="pipeline" if on_tf else "model")
    assert isinstance(hypermodel, fake_keras_tuner.HyperModel)
    assert isinstance(hypermodel, tuner.RegularizationHyperModel)
    hp = FakeHyperParameters()
    model = hypermodel.build(hp)
    assert isinstance(model, keras.Model) and model.compiled
    # The fake samples the lowest rates, 0: the builder adds no dropout.
    assert hp.space["dropout_dense"][1] == 0.0
    assert not any(isinstance(layer, keras.layers.Dropout)
                   for layer in model.layers)
    # With augment_on="model" the sampled policy is in the model.
    flips = [layer for layer in walk_layers(model)
             if isinstance(layer, keras.layers.RandomFlip)]
    assert len(flips) == (0 if on_tf else 1)
    history = hypermodel.fit(hp, model, x[:32], y[:32],
                             validation_data=(x[32:], y[32:]), epochs=1,
                             batch_size=16, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_a_real_random_search_over_the_preset(tmp_path):
    keras_tuner = pytest.importorskip("keras_tuner")
    x, y = random_batch(160, IMAGE)
    hypermodel = tuner.make_hypermodel("small", IMAGE, 10, seed=0)
    search = keras_tuner.RandomSearch(
        hypermodel, objective="val_accuracy", max_trials=2, seed=0,
        directory=str(tmp_path), project_name="regkit",
    )
    search.search(x[:120], y[:120], validation_data=(x[120:], y[120:]),
                  epochs=1, batch_size=40, verbose=0)
    trials = search.oracle.get_best_trials(2)
    assert len(trials) == 2
    sampled = [t.hyperparameters.values for t in trials]
    # Every sampled point is a valid preset with regularization fields set.
    for values in sampled:
        assert 0.0 <= values["dropout_dense"] < 1.0
    assert all(np.isfinite(t.score) for t in trials)
    best = search.get_best_models(1)[0]
    assert best.output_shape == (None, 10)
