"""`regkit train`: train a capacity preset and write its run folder.

The preset (or `--config` YAML) sets the defaults, flags override single
fields, and `ProductionModelBuilder.train` writes everything to the run
folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keras_regkit._choices import ARCHITECTURE_NAMES
from keras_regkit._choices import AUGMENTATION_POLICIES
from keras_regkit._choices import PRECISIONS
from keras_regkit._choices import PRESET_NAMES
from keras_regkit.cli import _common

if TYPE_CHECKING:
    import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds `regkit train` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "train", help="train a capacity preset on CIFAR-10",
        description="Train a capacity preset on CIFAR-10, on any Keras "
        "backend (KERAS_BACKEND), through a tf.data pipeline (or NumPy "
        "batches where TensorFlow is not installed), and write a run "
        "folder (config.yaml, history.csv, "
        "best_model.keras, final_model.keras, summary.json, "
        "training_curves.png, TensorBoard logs). Running again with the same "
        "--out resumes an interrupted run.")
    data = p.add_argument_group("Data")
    _common.add_data_flags(data)

    model = p.add_argument_group("Model")
    model.add_argument("--capacity", choices=PRESET_NAMES, default="small",
                       help="capacity preset (default: small)")
    model.add_argument("--config", type=Path, default=None,
                       help="YAML preset file; overrides --capacity")
    model.add_argument("--architecture", choices=ARCHITECTURE_NAMES,
                       default=None, help="backbone (default: the preset's)")

    training = p.add_argument_group("Training")
    training.add_argument("--epochs", type=_common.positive_int, default=None,
                          help="epochs (default: the preset's)")
    training.add_argument("--batch-size", type=_common.positive_int,
                          default=None,
                          help="global batch size (default: the preset's)")
    training.add_argument("--seed", type=int, default=0,
                          help="random seed (default 0)")
    training.add_argument("--augmentation", choices=AUGMENTATION_POLICIES,
                          default=None,
                          help="augmentation policy (default: the preset's)")
    _common.add_input_flags(training)
    training.add_argument("--precision", choices=PRECISIONS,
                          default="float32",
                          help="compute precision (default float32)")

    output = p.add_argument_group("Output")
    output.add_argument("--out", type=Path, default=None,
                        help="run folder (default: runs/<capacity>-<time>); "
                        "an existing unfinished run there is resumed")
    output.add_argument("--overwrite", action="store_true",
                        help="replace a finished run already in --out")
    output.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="Keras progress output: 0 silent, 1 bar, 2 a "
                        "line per epoch (default 2)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Trains, evaluates the returned model and prints where it all went."""
    import time

    from keras.backend import backend as keras_backend

    from keras_regkit.training._remaining_time import RemainingTimeEstimate
    from keras_regkit.training.builder import ProductionModelBuilder

    overrides = {}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.augmentation:
        overrides["augmentation"] = args.augmentation
    capacity = str(args.config) if args.config else args.capacity
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, model_capacity=capacity, seed=args.seed,
        precision=args.precision, augment_on=args.augment_on,
        loader=args.loader, **overrides)
    out = args.out or Path("runs") / (
        f"{builder.preset.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    x_train, y_train, x_val, y_val, split = _common.load_data(args)
    print(f"regkit train: preset {builder.preset.name}, "
          f"{len(x_train)} training / {len(x_val)} validation images "
          f"({split}), backend {keras_backend()}, loader {builder.loader}, "
          f"precision {builder.precision.name}, run folder {out}",
          flush=True)
    model, history = builder.train(
        x_train, y_train, x_val, y_val, architecture=args.architecture,
        run_dir=out, verbose=args.verbose, overwrite=args.overwrite,
        callbacks=[RemainingTimeEstimate()])
    result = builder.evaluate(model, x_val, y_val)
    best = max(history.history.get("val_accuracy") or [float("nan")])
    print(f"validation accuracy {result['accuracy']:.4f} on {len(x_val)} "
          "images (the returned model: EarlyStopping's best epoch by "
          f"val_loss); best epoch by val_accuracy {best:.4f} "
          f"(best_model.keras); run folder: {out}")
    return 0
