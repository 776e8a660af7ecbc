"""Saved models load anywhere: a fresh process, any of the three backends.

One small model per serializable public class is saved on each backend
(this process for TensorFlow, a subprocess each for JAX and PyTorch), then
every backend's files are loaded on every backend: the full saved-on x
loaded-on matrix, nine pairs, from three subprocesses. TensorFlow loads
them in a fresh process that imports only `keras_regkit` and Keras, so a
class that only registers itself once some other module is imported fails
there, whichever backend saved it; JAX and PyTorch load them in the process
that saved their own (starting a whole Keras is most of the time). Each
loader predicts the same inputs; the predictions must match the ones made
before saving. The test starts its own processes on every backend, so it
runs once, in the TensorFlow pass (marker `all_backends`).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_regkit
from keras_regkit import constraints, initializers, layers, losses, metrics
from keras_regkit import optimizers, regularizers, schedules

BACKENDS = ("tensorflow", "jax", "torch")
# Cross-backend tolerance: the models are a few float32 dot products and
# convolutions of order-1 values; backends sum in different orders, which
# moves a result by a few ulps per term (float32 eps 1.2e-7 times at most a
# few hundred terms), far below 1e-4 relative.
RTOL, ATOL = 1e-4, 1e-5


def _dense_model(**dense_kwargs):
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(4, **dense_kwargs)(inputs)
    return keras.Model(inputs, outputs)


def _image_model(*blocks):
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for block in blocks:
        x = block(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _compiled(model, **compile_kwargs):
    model.compile(optimizer=compile_kwargs.pop("optimizer", "sgd"),
                  **compile_kwargs)
    return model


def _trained(model):
    """`model` after three steps, so its optimizer holds state to save."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, *model.input_shape[1:])).astype("float32")
    y = rng.normal(size=(12, model.output_shape[-1])).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return model


def _models():
    """`{public class name: model using it}`; one model per class."""
    rng = np.random.default_rng(0)
    anchor = rng.normal(size=(6, 4)).astype("float32")
    whitening = layers.PatchWhitening(patch_size=2)
    whitening.build((None, 8, 8, 3))
    whitening.adapt(rng.uniform(size=(32, 8, 8, 3)).astype("float32"))
    return {
        "DropConnect": _image_model(
            layers.DropConnect(keras.layers.Conv2D(4, 3), rate=0.2, seed=1)),
        "DropConnectDense": keras.Sequential(
            [keras.Input((6,)), layers.DropConnectDense(4, rate=0.3, seed=1)]),
        "GaussianWeightNoise": _image_model(layers.GaussianWeightNoise(
            keras.layers.Conv2D(4, 3), stddev=0.1, seed=1)),
        "ConcreteDropout": keras.Sequential([keras.Input((6,)),
                                             layers.ConcreteDropout(
                                                 keras.layers.Dense(4))]),
        "MCDropout": keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(5),
             layers.MCDropout(0.3, mc=False, seed=1)]),
        "MCSpatialDropout2D": _image_model(
            keras.layers.Conv2D(4, 3),
            layers.MCSpatialDropout2D(0.3, mc=False, seed=1)),
        "DropBlock2D": _image_model(keras.layers.Conv2D(4, 3),
                                    layers.DropBlock2D(0.2, 3, seed=1)),
        "StochasticDepth": _image_model(keras.layers.Conv2D(4, 3),
                                        layers.StochasticDepth(0.2, seed=1)),
        "PatchWhitening": _image_model(whitening),
        "ScaledBias": _image_model(keras.layers.Conv2D(4, 3),
                                   layers.ScaledBias(lr_multiplier=8.0)),
        # Trained, so that its moving statistics are not the initial ones.
        "FusedBatchNormalization": _trained(_compiled(_image_model(
            keras.layers.Conv2D(4, 3),
            layers.FusedBatchNormalization(momentum=0.5)), loss="mse")),
        "GELU": _image_model(keras.layers.Conv2D(4, 3), layers.GELU()),
        "FastConv2D": _trained(_compiled(_image_model(
            layers.FastConv2D(4, 3, kernel_gradient="shifted_matmuls")),
            loss="mse")),
        "ElasticNet": _dense_model(
            kernel_regularizer=regularizers.ElasticNet(1e-3, 1e-2)),
        "L2SP": _dense_model(
            kernel_regularizer=regularizers.L2SP(1e-2, anchor=anchor)),
        "GroupLasso": _dense_model(
            kernel_regularizer=regularizers.GroupLasso(1e-2)),
        "SpectralNormConstraint": _dense_model(
            kernel_constraint=constraints.SpectralNormConstraint(2.0)),
        "CenteredUnitNorm": _dense_model(
            kernel_constraint=constraints.CenteredUnitNorm()),
        "PartialDirac": _image_model(keras.layers.Conv2D(
            3, 3, padding="same",
            kernel_initializer=initializers.PartialDirac(seed=1))),
        "LabelSmoothingCrossEntropy": _compiled(
            _dense_model(activation="softmax"),
            loss=losses.LabelSmoothingCrossEntropy(0.1)),
        "TopKAccuracy": _compiled(
            _dense_model(activation="softmax"),
            loss="sparse_categorical_crossentropy",
            metrics=[metrics.TopKAccuracy(2)]),
        "ExpectedCalibrationError": _compiled(
            _dense_model(activation="softmax"),
            loss="sparse_categorical_crossentropy",
            metrics=[metrics.ExpectedCalibrationError(n_bins=5)]),
        "LookaheadOptimizer": _trained(_compiled(
            _dense_model(), loss="mse",
            optimizer=optimizers.LookaheadOptimizer(
                keras.optimizers.SGD(0.05, momentum=0.9), sync_period=2))),
        "MuonSGD": _trained(_compiled(
            _image_model(keras.layers.Conv2D(4, 3)), loss="mse",
            optimizer=optimizers.MuonSGD(0.05, muon_lr_ratio=0.5))),
        "WarmupLinearDecay": _compiled(
            _dense_model(), loss="mse",
            optimizer=keras.optimizers.SGD(schedules.WarmupLinearDecay(
                0.1, total_steps=100, warmup_steps=10))),
    }


# Keras objects a model can carry; callbacks are registered too but never
# saved inside a model file.
MODEL_FAMILIES = (keras.layers.Layer, keras.regularizers.Regularizer,
                  keras.constraints.Constraint, keras.initializers.Initializer,
                  keras.losses.Loss, keras.metrics.Metric,
                  keras.optimizers.schedules.LearningRateSchedule,
                  keras.optimizers.Optimizer)

# Loads every folder named on the command line once a line "load" arrives
# on stdin (the savers have finished by then), and writes what each model
# predicts. Alone, it is the fresh process: nothing but `keras_regkit` and
# Keras is imported before the loading starts.
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras_regkit  # the only keras_regkit import
    import keras

    if sys.stdin.readline().strip() != "load":
        sys.exit("no go-ahead to load")
    for folder in sys.argv[1:]:
        names = json.load(open(folder + "/names.json"))
        inputs = np.load(folder + "/inputs.npz")
        out = {}
        for name in names:
            model = keras.saving.load_model(f"{folder}/{name}.keras")
            # A direct call, not predict: no compiled function per model.
            out[name] = keras.ops.convert_to_numpy(
                model(inputs[name], training=False))
        np.savez(folder + f"/loaded_{keras.backend.backend()}.npz", **out)
""")


def test_every_model_family_class_has_a_saving_case():
    classes = {
        name for name in keras_regkit.__all__
        if isinstance(getattr(keras_regkit, name), type)
        and issubclass(getattr(keras_regkit, name), MODEL_FAMILIES)
    }
    assert classes == set(_models())


def save_models(folder):
    """Saves every case's model, its inputs and its outputs in `folder`.

    Also run by the saver subprocesses (`python -c` with this file's
    folder on the path) on the other backends.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    inputs, expected = {}, {}
    for name, model in _models().items():
        x = rng.uniform(size=(5,) + tuple(model.input_shape[1:]))
        inputs[name] = x.astype("float32")
        expected[name] = keras.ops.convert_to_numpy(
            model(inputs[name], training=False))
        model.save(folder / f"{name}.keras")
    np.savez(folder / "inputs.npz", **inputs)
    np.savez(folder / "expected.npz", **expected)
    (folder / "names.json").write_text(json.dumps(sorted(inputs)))


# Saves this backend's models (argv: the repository, its folder, then every
# backend's folder), says so on stdout, then goes on as LOADER.
SAVE_THEN_LOAD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from tests.test_saving import save_models
    save_models(sys.argv[2])
    print("saved", flush=True)
    sys.argv = sys.argv[:1] + sys.argv[3:]
""") + LOADER
ROOT = Path(__file__).resolve().parents[1]


def _require(backend):
    if (importlib.util.find_spec(backend) is None
            and os.environ.get("REGKIT_REQUIRE_BACKENDS") != "1"):
        pytest.skip(f"{backend} is not installed (tests/run_all.py says how "
                    "to add it)")


def _start(script, backend, log, *args):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    with open(log, "w") as errors:
        return subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            text=True, env=env, cwd=ROOT)


def _error(backend, process, log):
    return f"on {backend} (exit {process.returncode}): " + (
        Path(log).read_text()[-3000:])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Saves on every installed backend, then loads everything on each.

    All three processes start at once, since starting a Keras is most of
    their time: the JAX and PyTorch ones save, the TensorFlow one (a fresh
    loader) imports while this process saves TensorFlow's models. Once
    every saver has finished, each is told to load. Returns the folders
    and `{backend: error text or None}`.
    """
    root = tmp_path_factory.mktemp("saved")
    installed = [b for b in BACKENDS if importlib.util.find_spec(b)]
    folders = {backend: root / backend for backend in installed}
    here = keras.backend.backend()
    logs = {backend: root / f"{backend}.log" for backend in installed}
    processes = {
        backend: (_start(LOADER, backend, logs[backend], *folders.values())
                  if backend == here else
                  _start(SAVE_THEN_LOAD, backend, logs[backend], ROOT,
                         folders[backend], *folders.values()))
        for backend in installed}
    try:
        if here in folders:
            save_models(folders[here])
        for backend, process in processes.items():
            if backend != here:
                if "saved\n" not in iter(process.stdout.readline, ""):
                    process.wait()
                    pytest.fail(_error(backend, process, logs[backend]))
        for process in processes.values():
            process.stdin.write("load\n")
            process.stdin.flush()  # communicate() then closes it
        errors = {}
        for backend, process in processes.items():
            process.communicate(timeout=600)
            errors[backend] = (None if process.returncode == 0 else
                               _error(backend, process, logs[backend]))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return folders, errors


@pytest.mark.slow
@pytest.mark.all_backends
@pytest.mark.parametrize("backend", BACKENDS)
def test_models_load_in_a_fresh_process_on_every_backend(loaded, backend):
    _require(backend)
    folders, errors = loaded
    assert errors[backend] is None, errors[backend]
    for saved_on, folder in folders.items():
        expected = np.load(folder / "expected.npz")
        loaded_here = np.load(folder / f"loaded_{backend}.npz")
        assert sorted(loaded_here.files) == sorted(expected.files)
        for name in expected.files:
            np.testing.assert_allclose(
                loaded_here[name], expected[name], rtol=RTOL, atol=ATOL,
                err_msg=f"{name} saved on {saved_on}, loaded on {backend}")
