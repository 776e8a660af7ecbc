"""The builder on two devices: tf.distribute.MirroredStrategy on two
logical CPUs (TensorFlow), keras.distribution.DataParallel on two host
devices (JAX).

Devices must be configured before the backend starts, so each run happens
in a fresh subprocess that prints both first-epoch losses.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from keras_regkit import ProductionModelBuilder
from keras_regkit.data import load_cifar10_sample

(x, y), _ = load_cifar10_sample()
x, y = x[:512], y[:512]


def first_epoch_loss(strategy):
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, "small", seed=0, strategy=strategy,
        conv_filters=(8, 16), dense_units=(32,), batch_norm=False,
        dropout_dense=0.0, dropout_conv=0.0, augmentation="none",
        lr_schedule="constant", epochs=1, batch_size=64)
    _, history = builder.train(x, y, verbose=0)
    return float(history.history["loss"][0])


def muon_weights(strategy):
    # Five MuonSGD steps (the fast preset's optimizer) at the preset's
    # filter rate, 0.24, on one batch of 64 split over the replicas.
    import keras
    import numpy as np

    from keras_regkit.optimizers import MuonSGD

    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 64)]
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((8, 8, 3)), keras.layers.Conv2D(16, 3),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
        model.compile(MuonSGD(0.05, muon_lr_ratio=4.8),
                      keras.losses.CategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    model.fit(data.batch(64).repeat(), steps_per_epoch=5, verbose=0)
    return [w.numpy() for w in model.weights]


devices = [d.name for d in tf.config.list_logical_devices("CPU")]
mirrored = tf.distribute.MirroredStrategy(devices)
muon = [abs(a - b).max() / abs(b).max() for a, b in zip(
    muon_weights(mirrored), muon_weights(tf.distribute.get_strategy()))]
print(json.dumps({
    "replicas": mirrored.num_replicas_in_sync,
    "mirrored": first_epoch_loss(mirrored),
    "single": first_epoch_loss(None),
    "muon": [float(d) for d in muon],
}))
"""


@pytest.mark.requires_tensorflow
@pytest.mark.slow
def test_mirrored_strategy_matches_one_device():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True,
        cwd=root, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert losses["replicas"] == 2
    # Same seed, same data order, global batch split in two: the only
    # difference is the order of floating-point reductions.
    assert losses["mirrored"] == pytest.approx(losses["single"], rel=2e-3)
    # MuonSGD orthogonalizes the all-reduced gradient of the whole batch:
    # after five steps the conv kernel, its bias and the head agree to
    # float32 rounding (2e-6 of their largest value on 2 AVX512 cores).
    # Filter steps taken once per replica instead of once move the kernel
    # by half its largest value, and the other weights by 1e-2 to 5e-2.
    assert len(losses["muon"]) == 4
    assert max(losses["muon"]) < 1e-4, losses["muon"]


# The builder with `strategy=keras.distribution.DataParallel(...)` over two
# host devices, and without a strategy, on the same data; XLA_FLAGS splits
# the CPU in two before JAX starts, so it runs in a fresh process.
DATA_PARALLEL = r"""
import json
import jax
import keras
from keras_regkit import ProductionModelBuilder
from keras_regkit.data import load_cifar10_sample

(x, y), _ = load_cifar10_sample()
x, y = x[:512], y[:512]


def train(strategy):
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, "small", seed=0, strategy=strategy,
        conv_filters=(8, 16), dense_units=(32,), dropout_dense=0.0,
        dropout_conv=0.0, augmentation="none", lr_schedule="constant",
        epochs=1, batch_size=64, loader="arrays")
    model, history = builder.train(x, y, verbose=0)
    kernel = model.trainable_variables[0].value
    return float(history.history["loss"][0]), len(kernel.sharding.device_set)


devices = keras.distribution.list_devices("cpu")
parallel, spread = train(keras.distribution.DataParallel(devices=devices))
single, _ = train(None)
# Batches that would not split over the two devices are refused before
# training, naming the argument (JAX would fail inside `fit`).
refused = []
for batch_size, n_val in ((63, 100), (64, 101)):
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, "small", seed=0, conv_filters=(8, 16),
        dense_units=(32,), epochs=1, batch_size=batch_size,
        strategy=keras.distribution.DataParallel(devices=devices))
    try:
        builder.train(x, y, x[:n_val], y[:n_val], verbose=0)
    except ValueError as exc:
        refused.append(str(exc))
print(json.dumps({"devices": len(jax.devices()), "spread": spread,
                  "parallel": parallel, "single": single,
                  "refused": refused}))
"""


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                    reason="keras.distribution on JAX: runs in the JAX pass")
@pytest.mark.slow
def test_data_parallel_on_two_host_devices_matches_one_device():
    root = Path(__file__).resolve().parents[2]
    flags = os.environ.get("XLA_FLAGS", "")
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS=(
        flags + " --xla_force_host_platform_device_count=2").strip())
    result = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL], capture_output=True,
        text=True, cwd=root, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    # Both devices hold the model: the builder trained under the
    # distribution, not beside it.
    assert losses["devices"] == 2 and losses["spread"] == 2
    # The global batch of 64 is split 32 + 32; batch norm and the loss
    # reduce over the whole batch under jit, so only the order of the
    # floating-point sums differs.
    assert losses["parallel"] == pytest.approx(losses["single"], rel=2e-3)
    batch, val = losses["refused"]
    assert "`batch_size`" in batch and "63" in batch
    assert "multiple of 2" in batch
    assert "`X_val`" in val and "<101 images>" in val
    assert "first 100" in val
