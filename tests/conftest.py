"""Shared fixtures: real CIFAR-10 images from ../shared/data and seeding."""

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


def shared_data_dir():
    """The folder holding `cifar10_train_jpeg.tar.gz` (../shared/data)."""
    override = os.environ.get("REGKIT_SHARED_DATA")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "data"


def backend():
    return keras.backend.backend()


requires_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="uses tf.data or jit_compile on the TensorFlow backend",
)


def _read_jpeg_subset(archive, per_class):
    from PIL import Image

    images = {name: [] for name in CLASS_NAMES}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            parts = member.name.split("/")
            cls, stem = parts[-2], parts[-1][:-4]
            if cls not in images or int(stem) >= per_class:
                continue
            data = tar.extractfile(member).read()
            with Image.open(io.BytesIO(data)) as img:
                images[cls].append((int(stem), np.asarray(img.convert("RGB"))))
    xs, ys = [], []
    for label, name in enumerate(CLASS_NAMES):
        for _, arr in sorted(images[name], key=lambda item: item[0]):
            xs.append(arr)
            ys.append(label)
    return np.stack(xs).astype("uint8"), np.asarray(ys, dtype="int64")


@pytest.fixture(scope="session")
def cifar10_archive():
    """Path of the real CIFAR-10 training split (JPEG, folder per class)."""
    path = shared_data_dir() / "cifar10_train_jpeg.tar.gz"
    if not path.exists():
        pytest.fail(
            f"Real CIFAR-10 data not found at {path}. Place the shared/ folder "
            "beside the repository or set REGKIT_SHARED_DATA."
        )
    return path


@pytest.fixture(scope="session")
def cifar10_small(cifar10_archive):
    """1,000 real CIFAR-10 training images, 100 per class, interleaved.

    Returns `(x, y)`: `x` uint8 of shape (1000, 32, 32, 3), `y` int64 labels.
    The order is shuffled with a fixed seed so any prefix is class-balanced
    on average.
    """
    x, y = _read_jpeg_subset(cifar10_archive, per_class=100)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


@pytest.fixture(scope="session")
def cifar10_batch(cifar10_small):
    """64 real CIFAR-10 images scaled to [0, 1] float32, with int labels."""
    x, y = cifar10_small
    return x[:64].astype("float32") / 255.0, y[:64]


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield
