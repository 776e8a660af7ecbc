"""`regkit compare`: a preset and its ablations side by side.

A thin shell over `keras_regkit.experiments.compare_ablations`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keras_regkit._choices import ABLATION_NAMES
from keras_regkit._choices import PRESET_NAMES
from keras_regkit.cli import _common

if TYPE_CHECKING:
    import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds `regkit compare` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "compare", help="train a preset and its ablations side by side",
        description="Train a capacity preset and, for each ablation, the "
        "same preset with that regularizer off, on the same data and seed. "
        "Writes table.md, table.csv, validation_curves.png and results.json "
        "to --out. Example (the reference recipe's 'with and without "
        "dropout'): regkit compare --capacity small --ablate dropout")
    model = p.add_argument_group("Model")
    model.add_argument("--capacity", default="small",
                       help="preset name (" + ", ".join(PRESET_NAMES)
                       + ") or a YAML preset file (default: small)")
    model.add_argument("--ablate", required=True,
                       help="comma-separated ablations among: "
                       + ", ".join(ABLATION_NAMES))

    training = p.add_argument_group("Training")
    training.add_argument("--epochs", type=_common.positive_int, default=10,
                          help="epochs per run (default 10)")
    training.add_argument("--batch-size", type=_common.positive_int,
                          default=None,
                          help="batch size (default: the preset's)")
    training.add_argument("--seed", type=int, default=0,
                          help="random seed of every run (default 0)")
    _common.add_input_flags(training)

    data = p.add_argument_group("Data")
    _common.add_data_flags(data, limit=None)

    output = p.add_argument_group("Output")
    output.add_argument("--out", type=Path, default=None,
                        help="output folder (default: runs/compare-"
                        "<capacity>-<time>)")
    output.add_argument("--save-runs", action="store_true",
                        help="also keep every run's folder (models, history)")
    output.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                        help="Keras progress output per run (default 0)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Checks the ablations and preset, loads the data, runs the comparison."""
    import time

    from keras_regkit.experiments.compare import compare_ablations
    from keras_regkit.experiments.compare import parse_ablations
    from keras_regkit.models.presets import get_preset

    names = parse_ablations(args.ablate)  # fail before loading any data
    get_preset(args.capacity)
    stem = Path(args.capacity).stem
    out = args.out or Path("runs") / (
        f"compare-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    x_train, y_train, x_val, y_val, split = _common.load_limited_data(args)
    print(f"regkit compare: preset {args.capacity} and "
          f"{', '.join('no_' + n for n in names)}; {len(x_train)} training /"
          f" {len(x_val)} validation images ({split}), {args.epochs} "
          f"epoch(s), seed {args.seed}; output {out}", flush=True)
    result = compare_ablations(
        args.capacity, names, x_train, y_train, x_val, y_val,
        epochs=args.epochs, seed=args.seed, out_dir=out,
        batch_size=args.batch_size, save_runs=args.save_runs,
        verbose=args.verbose, progress=True, loader=args.loader,
        augment_on=args.augment_on)
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0
