"""What the `regkit` subcommands share: flags, data loading, model loading.

Nothing heavy at import time: `regkit --help` must not load Keras or
TensorFlow, so the data and model loaders import them when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from keras_regkit._choices import AUGMENT_ON
from keras_regkit._choices import DATASETS
from keras_regkit._choices import LOADERS
from keras_regkit._choices import TTA_MODES

if TYPE_CHECKING:
    import keras
    import numpy as np
    import numpy.typing as npt

    from keras_regkit._typing import StrPath

# `(x_train, y_train, x_val, y_val, split)`: uint8 images and labels, and a
# description of the validation images.
Data: TypeAlias = ("tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], "
                   "npt.NDArray[np.uint8], npt.NDArray[np.uint8], str]")

# `TTA_MODES` as command-line words: False is "none"; True is "flip".
TTA_CHOICES = tuple("none" if mode is False else mode
                    for mode in TTA_MODES if mode is not True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}")
    return value


def tta_mode(choice: str) -> bool | str:
    """The `tta` argument of the library for a `--tta` choice."""
    return False if choice == "none" else choice


def add_data_flags(group: argparse._ActionsContainer,
                   limit: int | None | Literal[False] = False) -> None:
    """Adds `--dataset`, `--data-dir` and, unless `limit` is False, `--limit`.

    Args:
        group: an argparse parser or argument group.
        limit: `False` (no `--limit` flag), or the default of `--limit`
            (`None`: every image). Defaults to `False`.
    """
    group.add_argument(
        "--dataset", choices=DATASETS, default="cifar10-sample",
        help="cifar10-sample: the 2,000/500 images shipped in the package "
        "(offline); cifar10: the full set from --data-dir or the Keras "
        "cache, the last 10%% of its training split as validation "
        "(default: cifar10-sample)")
    group.add_argument(
        "--data-dir", type=Path, default=None,
        help="folder or archive holding CIFAR-10 (pickled batches, "
        "cifar-10-python.tar.gz, or a folder-per-class tree or its .tar.gz)")
    if limit is not False:
        group.add_argument(
            "--limit", type=positive_int, default=limit,
            help="use at most N training and N validation images "
            f"(default: {limit or 'all'})")


def add_input_flags(group: argparse._ActionsContainer) -> None:
    """`--augment-on` and `--loader`: how the builder feeds training."""
    group.add_argument("--augment-on", choices=AUGMENT_ON,
                       default="pipeline",
                       help="where augmentation runs (default pipeline)")
    group.add_argument("--loader", choices=LOADERS, default="auto",
                       help="how batches are made: tf.data, NumPy arrays "
                       "(no TensorFlow; flip/shift policies, or "
                       "--augment-on model), or auto: tf.data where "
                       "TensorFlow is installed (default auto)")


def add_unsafe_flag(group: argparse._ActionsContainer) -> None:
    """Adds `--unsafe` (load a model with `safe_mode=False`)."""
    group.add_argument(
        "--unsafe", action="store_true",
        help="load with safe_mode=False (runs code stored in the file, e.g. "
        "Lambda layers): only for files you trust")


def load_data(args: argparse.Namespace) -> Data:
    """`(x_train, y_train, x_val, y_val, split)` for `--dataset`.

    The embedded sample comes with its validation split; for the full set,
    as in the reference recipe, the last 10% of the training split is
    validation. `split` describes the validation images.
    """
    from keras_regkit.data import load_cifar10, load_cifar10_sample

    if args.dataset == "cifar10-sample":
        (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
        return x_train, y_train, x_val, y_val, "embedded sample (validation split)"
    (x, y), _ = load_cifar10(data_dir=args.data_dir)
    n_val = len(x) // 10
    return (x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:],
            "last 10% of the training split")


def load_limited_data(args: argparse.Namespace) -> Data:
    """`load_data`, then at most `args.limit` training and validation images."""
    x_train, y_train, x_val, y_val, split = load_data(args)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_val, y_val = x_val[:args.limit], y_val[:args.limit]
    return x_train, y_train, x_val, y_val, split


def load_model(path: StrPath, unsafe: bool = False) -> keras.Model:
    """Loads a `.keras` file with keras_regkit's objects registered.

    Safe mode stays on (a file cannot run code) unless `unsafe` is asked,
    and then a warning goes to stderr. The commands only predict, so the
    model is loaded without its training configuration (`compile=False`):
    a model compiled on PyTorch records its optimizer under a module of
    Keras's PyTorch backend, which a plain `load_model` cannot import
    where torch is not installed.

    Args:
        path: the `.keras` file.
        unsafe: load with `safe_mode=False`. Defaults to `False`.
    """
    import keras

    import keras_regkit.analysis.calibration  # noqa: F401 (registers)
    import keras_regkit.callbacks  # noqa: F401
    import keras_regkit.layers  # noqa: F401
    import keras_regkit.losses  # noqa: F401
    import keras_regkit.metrics  # noqa: F401

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {path}")
    if unsafe:
        print("regkit: warning: --unsafe loads the model with "
              "safe_mode=False; code stored in the file will run. Only use "
              "it on files you trust.", file=sys.stderr)
    return keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
