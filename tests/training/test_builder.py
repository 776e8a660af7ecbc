"""ProductionModelBuilder: the reference recipe's surface and the training
run."""

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_regkit import OverfittingDetector, ProductionModelBuilder
from keras_regkit._walk import walk_layers
from keras_regkit.callbacks import RunBackup
from keras_regkit.training.runs import RUN_FILES
from tests.helpers import REFERENCE_REG_CONFIGS

# A tiny version of the small preset so a real fit takes about a second.
TINY = dict(conv_filters=(8, 16), dense_units=(32,), epochs=2, batch_size=50)
# Each pass trains through its backend's own input path: tf.data on
# TensorFlow; on JAX and PyTorch the NumPy loader, as where TensorFlow is
# not installed, with random flips (the loader applies flips and shifts;
# the small preset's "light" policy would need augment_on="model", which
# tests/experiments/test_tuner.py trains on every backend).
ON_TF = keras.backend.backend() == "tensorflow"
LOADER = dict(loader="tf.data") if ON_TF else dict(loader="arrays",
                                                   augmentation="flip")


def tiny_builder(**kwargs):
    options = {**TINY, **LOADER, **kwargs}
    return ProductionModelBuilder((32, 32, 3), 10, "small", seed=0, **options)


@pytest.mark.parametrize("capacity", sorted(REFERENCE_REG_CONFIGS))
def test_reg_config_matches_the_seed_exactly(capacity):
    builder = ProductionModelBuilder((32, 32, 3), 10, model_capacity=capacity)
    assert builder.reg_config == REFERENCE_REG_CONFIGS[capacity]


def test_default_capacity_is_medium():
    builder = ProductionModelBuilder(input_shape=(32, 32, 3), num_classes=10)
    assert builder.preset.name == "medium"


def test_unknown_capacity_is_refused_listing_names():
    with pytest.raises(ValueError, match="small.*medium|medium.*small"):
        ProductionModelBuilder((32, 32, 3), 10, model_capacity="huge")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_shape=(32, -1, 3)), "input_shape"),
        (dict(input_shape="32x32"), "input_shape"),
        (dict(num_classes=1), "num_classes"),
        (dict(augment_on="gpu"), "augment_on"),
        (dict(precision="fp8"), "precision"),
        (dict(seed=-3), "seed"),
        (dict(no_such_field=1), "no_such_field"),
    ],
)
def test_invalid_arguments_raise_at_construction(kwargs, match):
    args = dict(input_shape=(32, 32, 3), num_classes=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ProductionModelBuilder(**args)


def test_strategy_must_be_a_tf_distribute_strategy():
    with pytest.raises(TypeError, match="strategy"):
        ProductionModelBuilder((32, 32, 3), 10, strategy="mirrored")


def test_loader_is_resolved_and_checked_at_construction():
    installed = importlib.util.find_spec("tensorflow") is not None
    auto = ProductionModelBuilder((32, 32, 3), 10, "small")
    assert auto.loader == ("tf.data" if installed else "arrays")
    with pytest.raises(ValueError, match="`loader`.*'numpy'"):
        ProductionModelBuilder((32, 32, 3), 10, loader="numpy")
    # The NumPy loader cannot apply the medium preset's "standard" policy:
    # refused now, naming the field and the two ways out.
    with pytest.raises(ValueError) as info:
        ProductionModelBuilder((32, 32, 3), 10, "medium", loader="arrays")
    message = str(info.value)
    assert "augmentation='standard'" in message
    assert "augment_on='model'" in message and "loader='tf.data'" in message
    in_model = ProductionModelBuilder((32, 32, 3), 10, "medium",
                                      loader="arrays", augment_on="model")
    assert in_model.loader == "arrays"
    fast = ProductionModelBuilder((32, 32, 3), 10, "fast", loader="arrays")
    loader = fast.make_loader(np.zeros((8, 32, 32, 3), np.uint8),
                              np.arange(8) % 10, batch_size=4)
    assert (loader.batch_size, loader.augmentation, loader.num_classes) == (
        4, "alternating_flip_translate2", 10)
    assert loader[0][1].shape == (4, 10)  # one-hot, as the loss expects
    # Validation batches are never augmented, whatever the policy.
    medium = ProductionModelBuilder((32, 32, 3), 10, "medium")
    val = medium.make_loader(np.zeros((8, 32, 32, 3), np.uint8),
                             np.arange(8) % 10, batch_size=4, training=False)
    assert val.augmentation == "none" and not val.training
    with pytest.raises(ValueError, match="augmentation='standard'"):
        medium.make_loader(np.zeros((8, 32, 32, 3), np.uint8),
                           np.arange(8) % 10, batch_size=4, training=True)


def test_model_augmentation_keeps_the_training_step_compiled_on_jax():
    # The medium preset's policy holds RandomRotation, RandomZoom and
    # RandomTranslation, which Keras marks as not jit-compatible: JAX would
    # train the model eagerly. The builder's policy comes marked.
    builder = ProductionModelBuilder((32, 32, 3), 10, "medium",
                                     augment_on="model")
    model = builder.compile_model(
        builder.with_model_augmentation(builder.build_model()))
    kinds = {type(layer).__name__ for layer in walk_layers(model)}
    assert {"RandomRotation", "RandomZoom", "RandomTranslation"} <= kinds
    # "auto" compiles on JAX only (TensorFlow on a CPU and PyTorch do not).
    assert model.jit_compile == (keras.backend.backend() == "jax")


def test_strategy_of_another_backend_is_refused():
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices("cpu")[:1]
        builder = ProductionModelBuilder(
            (32, 32, 3), 10, strategy=keras.distribution.DataParallel(
                devices=devices))
        assert isinstance(builder.strategy, keras.distribution.DataParallel)
    elif backend == "tensorflow":  # Keras has no distribution on PyTorch
        devices = keras.distribution.list_devices("cpu")[:1]
        with pytest.raises(ValueError, match="`strategy`.*KERAS_BACKEND=jax"):
            ProductionModelBuilder(
                (32, 32, 3), 10,
                strategy=keras.distribution.DataParallel(devices=devices))
    if importlib.util.find_spec("tensorflow") is None:
        return
    import tensorflow as tf

    one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
    if backend == "tensorflow":
        with pytest.raises(ValueError, match="`loader`.*tf.distribute"):
            ProductionModelBuilder((32, 32, 3), 10, "fast",
                                   strategy=one_device, loader="arrays")
    else:
        with pytest.raises(ValueError,
                           match="`strategy`.*KERAS_BACKEND=tensorflow"):
            ProductionModelBuilder((32, 32, 3), 10, strategy=one_device)


def test_medium_cnn_is_named_after_the_preset_and_has_no_double_penalty():
    builder = ProductionModelBuilder((32, 32, 3), 10, "medium")
    model = builder.build_model(architecture="cnn")
    assert model.name == "medium_cnn"
    assert model.output_shape == (None, 10)
    builder.compile_model(model, learning_rate=0.001)
    # Decay is decoupled: AdamW carries it, no kernel carries an L2 penalty.
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(
        builder.preset.weight_decay)
    assert all(
        getattr(layer, "kernel_regularizer", None) is None
        for layer in model.layers
    )
    assert model.losses == []


def test_l2_mode_puts_the_penalty_in_kernels_and_none_in_the_optimizer():
    builder = tiny_builder(weight_decay_mode="l2")
    model = builder.compile_model(builder.build_model("cnn"))
    assert len(model.losses) > 0
    assert not model.optimizer.weight_decay


@pytest.mark.parametrize("architecture", ["mlp", "resnet", "fast"])
def test_other_architectures_build(architecture):
    builder = tiny_builder()
    model = builder.build_model(architecture=architecture)
    assert model.name == f"small_{architecture}"
    assert model.output_shape == (None, 10)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture"):
        tiny_builder().build_model(architecture="transformer")


def test_seed_main_evaluate_unpacks_loss_accuracy_top5(cifar10_batch):
    x, y = cifar10_batch
    builder = tiny_builder()
    model = builder.compile_model(builder.build_model("cnn"))
    onehot = keras.utils.to_categorical(y, 10)
    for labels in (onehot, y):
        loss, accuracy, top5 = model.evaluate(x, labels, verbose=0)
        assert 0.0 <= accuracy <= top5 <= 1.0
        assert np.isfinite(loss)


def test_get_callbacks_follow_the_reference_recipe(tmp_path):
    builder = ProductionModelBuilder((32, 32, 3), 10, "medium")
    callbacks = builder.get_callbacks(log_dir=str(tmp_path / "logs"))
    by_type = {type(c).__name__: c for c in callbacks}
    early = by_type["EarlyStopping"]
    assert (early.monitor, early.patience, early.restore_best_weights) == (
        "val_loss", 15, True)
    plateau = by_type["ReduceLROnPlateau"]
    assert (plateau.monitor, plateau.factor, plateau.patience) == (
        "val_loss", 0.5, 5)
    assert plateau.min_lr == pytest.approx(1e-7)
    assert by_type["OverfittingDetector"].threshold == 0.15
    assert isinstance(callbacks[0], keras.callbacks.TerminateOnNaN)
    assert isinstance(callbacks[-1], RunBackup)
    assert by_type["RunBackup"].callbacks == [early, plateau]
    assert isinstance(by_type["OverfittingDetector"], OverfittingDetector)
    checkpoint = by_type["BestModelCheckpoint"]
    assert checkpoint.path.suffix == ".keras"
    assert checkpoint.monitor == "val_accuracy"
    assert "TensorBoard" in by_type and "RunBackup" in by_type


def test_without_validation_callbacks_watch_training_metrics(tmp_path):
    builder = ProductionModelBuilder((32, 32, 3), 10, "medium")
    callbacks = builder.get_callbacks(log_dir=None, run_dir=tmp_path,
                                      validation=False)
    by_type = {type(c).__name__: c for c in callbacks}
    assert by_type["EarlyStopping"].monitor == "loss"
    assert by_type["ReduceLROnPlateau"].monitor == "loss"
    assert by_type["BestModelCheckpoint"].monitor == "accuracy"
    # The detector compares training and validation loss: without
    # validation it could only warn every epoch, so it is left out.
    assert "OverfittingDetector" not in by_type


def test_get_data_augmentation_is_one_layer_with_the_reference_transforms():
    augment = ProductionModelBuilder((32, 32, 3), 10).get_data_augmentation()
    assert isinstance(augment, keras.layers.Layer)
    names = {type(layer).__name__ for layer in augment.layers}
    assert {"RandomFlip", "RandomRotation", "RandomZoom",
            "RandomTranslation", "RandomContrast"} <= names


@pytest.mark.parametrize("one_hot", [False, True])
def test_train_on_real_images_with_int_or_one_hot_labels(cifar10_small,
                                                         one_hot):
    x, y = cifar10_small
    x_train, y_train, x_val, y_val = x[:300], y[:300], x[300:400], y[300:400]
    if one_hot:
        y_train = keras.utils.to_categorical(y_train, 10)
        y_val = keras.utils.to_categorical(y_val, 10)
    builder = tiny_builder()
    model, history = builder.train(x_train, y_train, x_val, y_val,
                                   epochs=2, batch_size=50, verbose=0)
    assert history.epoch == [0, 1]
    for key in ("loss", "accuracy", "top5_accuracy", "val_loss",
                "val_accuracy", "overfitting"):
        assert len(history.history[key]) == 2
    probs = model.predict(x_val[:8].astype("float32") / 255, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def finished_run(cifar10_small, tmp_path_factory):
    """A finished run folder, with `epochs` and `batch_size` given to train.

    Returns `(builder, run_dir, model, history)`. The preset says 3 epochs
    of batch 50; `train` is told 2 epochs of batch 40 (5 steps an epoch).
    """
    x, y = cifar10_small
    run = tmp_path_factory.mktemp("finished") / "run"
    builder = tiny_builder(epochs=3)
    model, history = builder.train(x[:200], y[:200], x[200:300], y[200:300],
                                   epochs=2, batch_size=40, run_dir=run,
                                   verbose=0)
    return builder, run, model, history


def test_train_writes_a_complete_run_folder(cifar10_small, finished_run):
    x, y = cifar10_small
    builder, run, model, history = finished_run
    for name in ("config.yaml", "history.csv", "best_model.keras",
                 "final_model.keras", "summary.json", "training_curves.png"):
        assert (run / name).stat().st_size > 0, name
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_recorded"] == 2
    assert summary["wall_time_s"] > 0 and summary["images_per_s"] > 0
    assert summary["best_val_accuracy"] == pytest.approx(
        max(history.history["val_accuracy"]))
    best = keras.saving.load_model(run / "best_model.keras")
    assert best.count_params() == model.count_params()
    assert not (run / "backup").exists()
    assert set(RUN_FILES) >= {"history.csv", "summary.json"}
    # A finished run is never overwritten by accident.
    with pytest.raises(FileExistsError, match="overwrite"):
        builder.train(x[:200], y[:200], x[200:300], y[200:300], run_dir=run,
                      verbose=0)


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt("simulated interruption")


@pytest.fixture(scope="module")
def crashed_run(cifar10_small, tmp_path_factory):
    """`(data, run_dir)`: a 3-epoch run interrupted at the end of epoch 1.

    Tests resume or reuse a copy of the folder, never the folder itself.
    """
    x, y = cifar10_small
    data = (x[:200], y[:200], x[200:300], y[200:300])
    run = tmp_path_factory.mktemp("crashed") / "run"
    with pytest.raises(KeyboardInterrupt):
        tiny_builder(epochs=3).train(*data, run_dir=run, verbose=0,
                                     callbacks=[_Crash(at_epoch=1)])
    return data, run


def test_interrupted_run_resumes_where_it_stopped(crashed_run, tmp_path):
    data, crashed = crashed_run
    run = shutil.copytree(crashed, tmp_path / "run")
    assert (run / "backup").exists() and not (run / "summary.json").exists()
    _, history = tiny_builder(epochs=3).train(*data, run_dir=run, verbose=0)
    # The crash came before the epoch-1 backup: epoch 1 runs again.
    assert history.epoch == [1, 2]
    with open(run / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2]
    assert len(history.history["loss"]) == 3


def test_resume_with_a_different_config_is_refused(crashed_run, tmp_path):
    data, crashed = crashed_run
    run = shutil.copytree(crashed, tmp_path / "run")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(ValueError, match="epochs=5"):
        tiny_builder(epochs=5).train(*data, run_dir=run, verbose=0)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_predict_with_tta_averages_the_mirror(cifar10_batch):
    x, _ = cifar10_batch
    builder = tiny_builder()
    model = builder.build_model("cnn")
    plain = model.predict(x, verbose=0)
    mirror = model.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(builder.predict(model, x, tta=True),
                               (plain + mirror) / 2, atol=1e-6)
    result = builder.evaluate(model, x, np.zeros(len(x), "int64"))
    assert result["accuracy"] == pytest.approx(
        float((plain.argmax(-1) == 0).mean()))


def test_mixed_bfloat16_trains_with_float32_variables(cifar10_small):
    x, y = cifar10_small
    builder = tiny_builder(epochs=1, batch_norm=True)
    builder = ProductionModelBuilder((32, 32, 3), 10, builder.preset, seed=0,
                                     precision="mixed_bfloat16", **LOADER)
    model, history = builder.train(x[:100], y[:100], x[100:150], y[100:150],
                                   verbose=0)
    assert np.isfinite(history.history["loss"][0])
    dense = [layer for layer in walk_layers(model)
             if isinstance(layer, keras.layers.Dense)]
    assert dense[0].compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    # The global policy is left as it was.
    assert keras.config.dtype_policy().name == "float32"
    assert model.output.dtype == "float32"


def test_train_arguments_are_validated_and_recorded(cifar10_small,
                                                    finished_run):
    x, y = cifar10_small
    with pytest.raises(ValueError, match="`epochs`"):
        tiny_builder().train(x[:100], y[:100], epochs=0, verbose=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        tiny_builder().train(x[:100], y[:100], batch_size=0, verbose=0)
    from keras_regkit.models.presets import CapacityPreset

    builder, run, _, history = finished_run
    assert (builder.preset.epochs, builder.preset.batch_size) == (3, 50)
    saved = CapacityPreset.from_yaml(run / "config.yaml")
    assert (saved.epochs, saved.batch_size) == (2, 40)
    assert history.epoch == [0, 1]
    assert history.params["steps"] == 5  # 200 images in batches of 40


def test_fast_preset_trains_with_its_tricks(cifar10_small, tmp_path):
    from keras_regkit import Lookahead, PatchWhitening, WhiteningBiasFreezer

    x, y = cifar10_small
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, "fast", seed=0, conv_filters=(8, 16, 16),
        epochs=2, batch_size=100, loader=LOADER["loader"])
    callbacks = builder.get_callbacks(log_dir=None)
    kinds = [type(c) for c in callbacks]
    assert Lookahead in kinds and WhiteningBiasFreezer in kinds
    stopper = next(c for c in callbacks
                   if isinstance(c, keras.callbacks.EarlyStopping))
    assert not stopper.restore_best_weights  # Lookahead ends on its average
    # In a run folder, each epoch's backup keeps Lookahead's slow weights.
    in_run = builder.get_callbacks(log_dir=None, run_dir=tmp_path)
    assert isinstance(in_run[-1], RunBackup)
    assert any(isinstance(c, Lookahead) and c in in_run
               for c in in_run[-1].callbacks)
    model, history = builder.train(x[:300], y[:300], x[300:400],
                                   y[300:400], verbose=0)
    stem = [layer for layer in model.layers
            if isinstance(layer, PatchWhitening)]
    assert len(stem) == 1 and stem[0].adapted
    assert stem[0].bias_trainable_now  # trained for 3 epochs, this run has 2
    assert len(history.history["loss"]) == 2
    x_test, y_test = x[900:], np.asarray(y[900:]).reshape(-1)
    probs = model.predict(x_test.astype("float32") / 255.0, verbose=0)
    plain = builder.evaluate(model, x_test, y_test)
    assert plain["accuracy"] == pytest.approx(
        float((probs.argmax(-1) == y_test).mean()))
    # The run ended on Lookahead's averaged weights, which make a working
    # model: its probabilities are finite and sum to one.
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    from keras_regkit.training.tta import tta_views

    views = tta_views(x_test.astype("float32") / 255.0, "flip_translate")
    mean = np.mean([model.predict(v, verbose=0) for v in views], axis=0)
    tta = builder.evaluate(model, x_test, y_test, tta="flip_translate")
    assert len(views) == 6 and np.isfinite(tta["loss"])
    assert tta["accuracy"] == pytest.approx(
        float((mean.argmax(-1) == y_test).mean()))


@pytest.mark.skipif(ON_TF or importlib.util.find_spec("tensorflow") is None,
                    reason="tf.data feeding JAX or PyTorch: runs in those "
                    "passes, where TensorFlow is installed")
def test_tf_data_feeds_this_backend(cifar10_small):
    x, y = cifar10_small
    import tensorflow as tf

    builder = tiny_builder(loader="tf.data", augmentation="light")
    assert isinstance(builder.make_input(x[:200], y[:200], 50),
                      tf.data.Dataset)
    model, history = builder.train(x[:200], y[:200], x[200:300], y[200:300],
                                   verbose=0)
    assert history.params["steps"] == 4
    assert np.all(np.isfinite(history.history["val_loss"]))


# Imports keras_regkit in a process where `import tensorflow` fails, as on
# a machine without it, trains into a run folder, and reports what it saw.
NO_TENSORFLOW = r"""
import importlib.machinery, json, sys


# The path finder, blind to tensorflow: `import tensorflow` raises
# ModuleNotFoundError and `importlib.util.find_spec` returns None, as where
# it is not installed.
class PathFinderWithoutTensorFlow:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @staticmethod
    def invalidate_caches():
        importlib.machinery.PathFinder.invalidate_caches()


sys.meta_path[:] = [PathFinderWithoutTensorFlow
                    if f is importlib.machinery.PathFinder else f
                    for f in sys.meta_path]
import warnings
warnings.simplefilter("ignore")
from keras_regkit import ProductionModelBuilder
from keras_regkit.data import load_cifar10_sample

(x, y), (x_val, y_val) = load_cifar10_sample()
builder = ProductionModelBuilder(
    (32, 32, 3), 10, "small", seed=0, conv_filters=(8, 16),
    dense_units=(32,), epochs=2, batch_size=50, augmentation="flip",
    mixup_alpha=0.2)
model, history = builder.train(x[:200], y[:200], x_val[:100], y_val[:100],
                               run_dir=sys.argv[1], verbose=0)
print(json.dumps({
    "loader": builder.loader,
    "epochs": history.epoch,
    "val_loss": history.history["val_loss"],
    "tensorflow_loaded": "tensorflow" in sys.modules,
}))
"""


@pytest.mark.skipif(ON_TF, reason="blocks TensorFlow, so it runs in the "
                    "JAX and PyTorch passes")
@pytest.mark.slow
def test_builder_trains_where_tensorflow_is_not_installed(tmp_path):
    root = Path(__file__).resolve().parents[2]
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, str(run)], capture_output=True,
        text=True, cwd=root, env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loader"] == "arrays" and report["epochs"] == [0, 1]
    assert not report["tensorflow_loaded"]
    assert np.all(np.isfinite(report["val_loss"]))
    for name in ("config.yaml", "history.csv", "best_model.keras",
                 "final_model.keras", "summary.json"):
        assert (run / name).stat().st_size > 0, name
    assert not (run / "logs").exists()  # TensorBoard writes through tf


@pytest.mark.requires_tensorflow
def test_the_numpy_loader_feeds_tensorflow_without_autotuning(monkeypatch):
    # Keras's own adapter for a PyDataset prefetches with tf.data's
    # autotuning, which can stall `fit` between epochs on TensorFlow.
    import tensorflow as tf

    seen = []
    fit = keras.Model.fit

    def recording_fit(model, x=None, *args, **kwargs):
        seen.append((x, kwargs.get("validation_data")))
        return fit(model, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (130, 32, 32, 3), "uint8")
    y = rng.integers(0, 10, 130)
    builder = tiny_builder(loader="arrays", augmentation="flip")
    _, history = builder.train(x[:100], y[:100], x[100:], y[100:],
                               verbose=0)
    assert history.epoch == [0, 1]
    assert np.all(np.isfinite(history.history["val_loss"]))
    (train, val), = seen
    for data, batches in ((train, 2), (val, 1)):  # 100 // 50; 30 kept
        assert isinstance(data, tf.data.Dataset)
        assert data.options().autotune.enabled is False
        assert int(data.cardinality()) == batches
