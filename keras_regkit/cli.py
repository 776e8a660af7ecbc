"""The `regkit` command (also `python -m keras_regkit`).

A thin shell over the library: the preset (or `--config` YAML) sets the
defaults, flags override single fields, and everything is written to a run
folder by `ProductionModelBuilder.train`.
"""

import argparse
import os
import sys
import time
from pathlib import Path

PRESET_NAMES = ("small", "medium", "large", "fast")
DATASETS = ("cifar10-sample", "cifar10")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}")
    return value


def _add_train(sub):
    p = sub.add_parser(
        "train", help="train a capacity preset on CIFAR-10",
        description="Train a capacity preset on CIFAR-10 through a tf.data "
        "pipeline and write a run folder (config.yaml, history.csv, "
        "best_model.keras, final_model.keras, summary.json, "
        "training_curves.png, TensorBoard logs). Running again with the same "
        "--out resumes an interrupted run.")
    p.add_argument("--capacity", choices=PRESET_NAMES, default="small",
                   help="capacity preset (default: small)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML preset file; overrides --capacity")
    p.add_argument("--dataset", choices=DATASETS, default="cifar10-sample",
                   help="cifar10-sample: the 2,000/500 images shipped in the "
                   "package (offline); cifar10: the full set from --data-dir "
                   "or the Keras cache (default: cifar10-sample)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder or archive holding CIFAR-10 (pickled batches,"
                   " cifar-10-python.tar.gz, or a folder-per-class tree or "
                   "its .tar.gz)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="global batch size (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--architecture", choices=("cnn", "mlp", "resnet", "fast"),
                   default=None, help="backbone (default: the preset's)")
    p.add_argument("--precision", default="float32",
                   choices=("float32", "mixed_bfloat16", "mixed_float16",
                            "auto"), help="compute precision (default float32)")
    p.add_argument("--augment-on", choices=("pipeline", "model"),
                   default="pipeline", help="where augmentation runs")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/<capacity>-<time>); an "
                   "existing unfinished run there is resumed")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run already in --out")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                   help="Keras progress output: 0 silent, 1 bar, 2 a line "
                   "per epoch (default 2)")
    p.set_defaults(func=_train)


def _load_data(args):
    from keras_regkit.data import load_cifar10, load_cifar10_sample

    if args.dataset == "cifar10-sample":
        (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
        return x_train, y_train, x_val, y_val, "embedded sample (validation split)"
    (x, y), _ = load_cifar10(data_dir=args.data_dir)
    n_val = len(x) // 10
    # The seed's split: the last 10% of the training split is validation.
    return (x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:],
            "last 10% of the training split")


def _train(args):
    from keras_regkit.training.builder import ProductionModelBuilder

    overrides = {}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    capacity = str(args.config) if args.config else args.capacity
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, model_capacity=capacity, seed=args.seed,
        precision=args.precision, augment_on=args.augment_on, **overrides)
    out = args.out or Path("runs") / (
        f"{builder.preset.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    x_train, y_train, x_val, y_val, split = _load_data(args)
    print(f"regkit train: preset {builder.preset.name}, "
          f"{len(x_train)} training / {len(x_val)} validation images "
          f"({split}), precision {builder.precision.name}, run folder {out}",
          flush=True)
    model, history = builder.train(
        x_train, y_train, x_val, y_val, architecture=args.architecture,
        run_dir=out, verbose=args.verbose, overwrite=args.overwrite)
    result = builder.evaluate(model, x_val, y_val)
    best = max(history.history.get("val_accuracy") or [float("nan")])
    print(f"validation accuracy {result['accuracy']:.4f} on {len(x_val)} "
          "images (the returned model: EarlyStopping's best epoch by "
          f"val_loss); best epoch by val_accuracy {best:.4f} "
          f"(best_model.keras); run folder: {out}")
    return 0


def _add_evaluate(sub):
    p = sub.add_parser(
        "evaluate", help="accuracy of a saved model, optionally with TTA",
        description="Evaluate a saved .keras model on the validation images "
        "(the embedded sample's validation split, or the last 10%% of the "
        "full training split), optionally averaging test-time views.")
    p.add_argument("model", type=Path, help="the .keras model file")
    p.add_argument("--dataset", choices=DATASETS, default="cifar10-sample")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--tta", choices=("none", "flip", "flip_translate"),
                   default="none", help="test-time augmentation views")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--unsafe", action="store_true",
                   help="load with safe_mode=False (runs code stored in the "
                   "file: only for files you trust)")
    p.set_defaults(func=_evaluate)


def _evaluate(args):
    import numpy as np

    from keras_regkit.analysis._cli import load_model
    from keras_regkit.training.tta import tta_predict

    model = load_model(args.model, args.unsafe)
    _, _, x_val, y_val, split = _load_data(args)
    tta = False if args.tta == "none" else args.tta
    probs = tta_predict(model, x_val.astype("float32") / 255.0,
                        batch_size=args.batch_size, tta=tta)
    labels = np.asarray(y_val).reshape(-1)
    accuracy = float((probs.argmax(-1) == labels).mean())
    print(f"{args.model}: accuracy {accuracy:.4f} on {len(labels)} images "
          f"({split}), tta={args.tta}")
    return 0


def build_parser():
    """The argument parser of the `regkit` command."""
    parser = argparse.ArgumentParser(
        prog="regkit",
        description="keras_regkit: regularized Keras models against "
        "overfitting. Run `regkit COMMAND --help` for a command's flags.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    from keras_regkit.experiments.compare import (
        add_compare_parser,
        add_diagnose_parser,
    )

    add_compare_parser(sub)
    add_diagnose_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the `regkit` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError,
            FloatingPointError) as exc:
        print(f"regkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
