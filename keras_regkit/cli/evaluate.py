"""`regkit evaluate`: accuracy of a saved model, optionally with TTA.

The evaluation is the library's (`training.evaluation.evaluate_model`, as
behind `ProductionModelBuilder.evaluate`); this module only loads the
model and the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keras_regkit.cli import _common

if TYPE_CHECKING:
    import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds `regkit evaluate` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "evaluate", help="accuracy of a saved model, optionally with TTA",
        description="Evaluate a saved .keras model on the validation images "
        "(the embedded sample's validation split, or the last 10%% of the "
        "full training split), optionally averaging test-time views.")
    model = p.add_argument_group("Model")
    model.add_argument("model", type=Path, help="the .keras model file")
    _common.add_unsafe_flag(model)

    data = p.add_argument_group("Data")
    _common.add_data_flags(data)

    evaluation = p.add_argument_group("Evaluation")
    evaluation.add_argument("--tta", choices=_common.TTA_CHOICES,
                            default="none",
                            help="test-time augmentation views: none, flip "
                            "(and the mirror), flip_translate (and one-pixel"
                            " shifts of both) (default: none)")
    evaluation.add_argument("--batch-size", type=_common.positive_int,
                            default=256,
                            help="prediction batch size (default 256)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Loads the model and the validation images, prints the accuracy."""
    from keras_regkit.training.evaluation import evaluate_model

    model = _common.load_model(args.model, args.unsafe)
    _, _, x_val, y_val, split = _common.load_data(args)
    result = evaluate_model(model, x_val, y_val, batch_size=args.batch_size,
                            tta=_common.tta_mode(args.tta))
    print(f"{args.model}: accuracy {result['accuracy']:.4f} on {len(x_val)} "
          f"images ({split}), tta={args.tta}; loss {result['loss']:.4f}")
    return 0
