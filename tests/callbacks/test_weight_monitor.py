"""WeightStatsMonitor: exact statistics, stable log keys, warnings and
TensorBoard output."""

import warnings

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import WeightStatsMonitor
from keras_regkit.callbacks.weight_monitor import kernel_layers
from keras_regkit.callbacks.weight_monitor import weight_stats
from keras_regkit.layers import DropConnect
from tests.helpers import random_batch


def _model(l2=None):
    reg = None if l2 is None else keras.regularizers.L2(l2)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32, activation="relu", name="hidden",
                           kernel_regularizer=reg)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head",
                                 kernel_regularizer=reg)(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1),
                  "sparse_categorical_crossentropy")
    return model


def test_weight_stats_numbers():
    w = np.array([[3.0, 0.0], [-4.0, 0.0005]])
    stats = weight_stats(w, zero_tol=1e-3, previous=np.array(
        [[3.0, 0.0], [0.0, 0.0]]))
    assert stats["l2_norm"] == pytest.approx(np.sqrt(25 + 0.0005 ** 2))
    assert stats["mean_abs"] == pytest.approx((7.0005) / 4)
    assert stats["zero_fraction"] == 0.5
    assert stats["update_ratio"] == pytest.approx(
        np.sqrt(16 + 0.0005 ** 2) / 3.0)
    assert np.isnan(weight_stats(w, 1e-3)["update_ratio"])


def test_logs_match_the_weights_with_stable_keys():
    x, y = random_batch()
    model = _model()
    before = {n: model.get_layer(n).get_weights()[0] for n in ("hidden",
                                                                "head")}
    monitor = WeightStatsMonitor(zero_tol=0.01)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0,
                        callbacks=[monitor])
    logs = {k: v[0] for k, v in history.history.items()}
    total_sq, total_d, total_p = 0.0, 0.0, 0.0
    for name in ("hidden", "head"):
        w = model.get_layer(name).get_weights()[0].astype("float64")
        w0 = before[name].astype("float64")
        prefix = f"weights/{name}/"
        assert logs[prefix + "l2_norm"] == pytest.approx(np.linalg.norm(w))
        assert logs[prefix + "mean_abs"] == pytest.approx(np.abs(w).mean())
        assert logs[prefix + "zero_fraction"] == pytest.approx(
            np.mean(np.abs(w) < 0.01))
        assert logs[prefix + "update_ratio"] == pytest.approx(
            np.linalg.norm(w - w0) / np.linalg.norm(w0), rel=1e-5)
        assert logs[prefix + "update_ratio"] > 0
        total_sq += np.sum(w ** 2)
        total_d += np.sum((w - w0) ** 2)
        total_p += np.sum(w0 ** 2)
    assert logs["weights/l2_norm"] == pytest.approx(np.sqrt(total_sq))
    assert logs["weights/update_ratio"] == pytest.approx(
        np.sqrt(total_d / total_p), rel=1e-5)
    assert sorted(k for k in logs if k.startswith("weights/")) == sorted(
        [f"weights/{n}/{s}" for n in ("hidden", "head") for s in
         ("l2_norm", "mean_abs", "zero_fraction", "update_ratio")]
        + ["weights/l2_norm", "weights/mean_abs", "weights/zero_fraction",
           "weights/update_ratio"])


@pytest.mark.slow
def test_warns_on_over_regularized_model_only():
    x, y = random_batch()
    for l2, expect in ((None, 0), (1.0, 2)):
        keras.utils.set_random_seed(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = _model(l2).fit(
                x, y, epochs=20, batch_size=64, verbose=0,
                callbacks=[WeightStatsMonitor()])
        ours = [str(w.message) for w in caught
                if "over-regularization" in str(w.message)]
        assert len(ours) == expect, ours
        zero = history.history["weights/zero_fraction"][-1]
        assert (zero > 0.5) == bool(expect)
    assert any("near zero" in m for m in ours)
    assert any("kernel norm of layer" in m for m in ours)


def test_nested_and_wrapped_kernels_are_found_once():
    inner = keras.Sequential([keras.layers.Dense(4, name="inner_dense")],
                             name="inner")
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, name="shared")
    x = shared(shared(inputs))
    x = DropConnect(keras.layers.Dense(5, name="wrapped"), rate=0.2)(x)
    model = keras.Model(inputs, inner(x))
    names = [name for name, _ in kernel_layers(model)]
    assert sorted(names) == ["inner_dense", "shared", "wrapped"]
    assert [n for n, _ in kernel_layers(model, ["shared"])] == ["shared"]


@pytest.mark.requires_tensorflow
def test_tensorflow_summary_writer(tmp_path):
    import tensorflow as tf

    x, y = random_batch()
    writer = tf.summary.create_file_writer(str(tmp_path))
    _model().fit(x, y, epochs=2, batch_size=32, verbose=0,
                 callbacks=[WeightStatsMonitor(writer=writer)])
    writer.close()
    tags = {}
    for path in tmp_path.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert tags["weights/hidden/l2_norm"] == [0, 1]
    assert len(tags) == 12


def test_add_scalar_writer_and_config():
    class Writer:
        def __init__(self):
            self.calls, self.flushes = [], 0

        def add_scalar(self, tag, value, step):
            self.calls.append((tag, step))

        def flush(self):
            self.flushes += 1

    x, y = random_batch()
    writer = Writer()
    monitor = WeightStatsMonitor(writer=writer, layers=["head"])
    _model().fit(x, y, epochs=2, batch_size=32, verbose=0,
                 callbacks=[monitor])
    assert ("weights/head/zero_fraction", 1) in writer.calls
    assert not any("hidden" in tag for tag, _ in writer.calls)
    assert len(writer.calls) == 16 and writer.flushes == 2
    config = monitor.get_config()
    assert WeightStatsMonitor.from_config(config).get_config() == config


@pytest.mark.filterwarnings("ignore:The model does not have any trainable")
def test_no_kernel_layers_warns_once():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dropout(0.1)(inputs))
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="found no layer with a kernel"):
        history = model.fit(np.ones((4, 4)), np.ones((4, 4)), epochs=2,
                            verbose=0, callbacks=[WeightStatsMonitor()])
    assert not any(k.startswith("weights/") for k in history.history)


@pytest.mark.parametrize("kwargs, name", [
    ({"zero_tol": 0.0}, "zero_tol"),
    ({"layers": "dense"}, "layers"),
    ({"layers": []}, "layers"),
    ({"writer": object()}, "writer"),
    ({"warn_zero_fraction": 1.5}, "warn_zero_fraction"),
    ({"warn_norm_ratio": -0.1}, "warn_norm_ratio"),
    ({"verbose": 2}, "verbose"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        WeightStatsMonitor(**kwargs)
