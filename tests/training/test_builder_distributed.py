"""The builder under tf.distribute.MirroredStrategy on two logical CPUs.

Logical devices must be configured before TensorFlow starts, so the run
happens in a fresh subprocess that prints both first-epoch losses.
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


devices = [d.name for d in tf.config.list_logical_devices("CPU")]
mirrored = tf.distribute.MirroredStrategy(devices)
print(json.dumps({
    "replicas": mirrored.num_replicas_in_sync,
    "mirrored": first_epoch_loss(mirrored),
    "single": first_epoch_loss(None),
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
