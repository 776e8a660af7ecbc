"""`regkit diagnose`: over- or under-regularization of a saved model.

A thin shell over `keras_regkit.analysis.regularization_diagnosis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keras_regkit.cli import _common

if TYPE_CHECKING:
    import argparse

# `regularization_diagnosis`'s thresholds: (argument, its default, meaning).
# A test checks the defaults against the function's signature.
THRESHOLDS = (
    ("severe_gap", 0.15, "accuracy gap of severe overfitting"),
    ("overfit_gap", 0.08, "accuracy gap of overfitting"),
    ("underfit_gap", 0.02, "accuracy gap under which low accuracy is "
     "underfitting"),
    ("underfit_acc", 0.75, "validation accuracy under which a small gap is "
     "underfitting"),
    ("zero_fraction_threshold", 0.5, "near-zero weight fraction of "
     "over-regularization"),
)


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds `regkit diagnose` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "diagnose", help="diagnose over- or under-regularization of a model",
        description="Load a .keras model (safe mode) and print the "
        "regularization diagnosis on CIFAR-10 training and validation "
        "images: losses, accuracies, gaps, weight statistics, a verdict and "
        "recommendations.")
    model = p.add_argument_group("Model")
    model.add_argument("model", type=Path, help="a .keras model file")
    _common.add_unsafe_flag(model)

    data = p.add_argument_group("Data")
    _common.add_data_flags(data, limit=5000)

    evaluation = p.add_argument_group("Evaluation")
    evaluation.add_argument("--batch-size", type=_common.positive_int,
                            default=256,
                            help="prediction batch size (default 256)")

    thresholds = p.add_argument_group("Thresholds")
    for name, default, text in THRESHOLDS:
        thresholds.add_argument("--" + name.replace("_", "-"), type=float,
                                default=default,
                                help=f"{text} (default {default})")

    output = p.add_argument_group("Output")
    output.add_argument("--json", type=Path, default=None,
                        help="also write the report as JSON to this file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Loads the model and the images, prints (and saves) the diagnosis."""
    import json

    from keras_regkit._images import to_float_images
    from keras_regkit.analysis.diagnosis import regularization_diagnosis

    model = _common.load_model(args.model, args.unsafe)
    x_train, y_train, x_val, y_val, split = _common.load_limited_data(args)
    print(f"regkit diagnose: {args.model} on {len(x_train)} training / "
          f"{len(x_val)} validation images ({split})", flush=True)
    report = regularization_diagnosis(
        model, to_float_images(x_train), y_train, to_float_images(x_val), y_val,
        verbose=True, batch_size=args.batch_size,
        **{name: getattr(args, name) for name, _, _ in THRESHOLDS})
    if args.json:
        from keras_regkit._atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0
