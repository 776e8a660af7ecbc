"""`regkit compare` and `regkit diagnose`: argparse wiring over the library."""

import json
import sys
import time
from pathlib import Path

from keras_regkit.cli import DATASETS, _positive_int  # one definition


def _add_data_flags(p, limit=None):
    p.add_argument("--dataset", choices=DATASETS, default="cifar10-sample",
                   help="cifar10-sample: the images shipped in the package "
                   "(offline); cifar10: the full set from --data-dir or the "
                   "Keras cache, last 10%% of training as validation "
                   "(default: cifar10-sample)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder or archive holding CIFAR-10")
    p.add_argument("--limit", type=_positive_int, default=limit,
                   help="use at most N training and N validation images "
                   f"(default: {limit or 'all'})")


def _data(args):
    from keras_regkit.cli import _load_data

    x_train, y_train, x_val, y_val, split = _load_data(args)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_val, y_val = x_val[:args.limit], y_val[:args.limit]
    return x_train, y_train, x_val, y_val, split


def add_compare(sub):
    from keras_regkit.experiments.compare import ABLATIONS

    p = sub.add_parser(
        "compare", help="train a preset and its ablations side by side",
        description="Train a capacity preset and, for each ablation, the "
        "same preset with that regularizer off, on the same data and seed. "
        "Writes table.md, table.csv, validation_curves.png and results.json "
        "to --out. Example (the seed's 'with and without dropout'): "
        "regkit compare --capacity small --ablate dropout")
    p.add_argument("--capacity", default="small",
                   help="preset name (small, medium, large, fast) or a YAML "
                   "preset file (default: small)")
    p.add_argument("--ablate", required=True,
                   help="comma-separated ablations among: "
                   + ", ".join(ABLATIONS))
    p.add_argument("--epochs", type=_positive_int, default=10,
                   help="epochs per run (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="batch size (default: the preset's)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every run (default 0)")
    _add_data_flags(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/compare-<capacity>-"
                   "<time>)")
    p.add_argument("--save-runs", action="store_true",
                   help="also keep every run's folder (models, history)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                   help="Keras progress output per run (default 0)")
    p.set_defaults(func=_compare)
    return p


def _compare(args):
    from keras_regkit.experiments.compare import compare_ablations
    from keras_regkit.experiments.compare import parse_ablations
    from keras_regkit.models.presets import get_preset

    names = parse_ablations(args.ablate)  # fail before loading any data
    get_preset(args.capacity)
    stem = Path(args.capacity).stem
    out = args.out or Path("runs") / (
        f"compare-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    x_train, y_train, x_val, y_val, split = _data(args)
    print(f"regkit compare: preset {args.capacity} and "
          f"{', '.join('no_' + n for n in names)}; {len(x_train)} training /"
          f" {len(x_val)} validation images ({split}), {args.epochs} "
          f"epoch(s), seed {args.seed}; output {out}", flush=True)
    result = compare_ablations(
        args.capacity, names, x_train, y_train, x_val, y_val,
        epochs=args.epochs, seed=args.seed, out_dir=out,
        batch_size=args.batch_size, save_runs=args.save_runs,
        verbose=args.verbose, progress=True)
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0


_THRESHOLDS = (
    ("severe_gap", 0.15, "accuracy gap of severe overfitting"),
    ("overfit_gap", 0.08, "accuracy gap of overfitting"),
    ("underfit_gap", 0.02, "accuracy gap under which low accuracy is "
     "underfitting"),
    ("underfit_acc", 0.75, "validation accuracy under which a small gap is "
     "underfitting"),
    ("zero_fraction_threshold", 0.5, "near-zero weight fraction of "
     "over-regularization"),
)


def add_diagnose(sub):
    p = sub.add_parser(
        "diagnose", help="diagnose over- or under-regularization of a model",
        description="Load a .keras model (safe mode) and print the "
        "regularization diagnosis on CIFAR-10 training and validation "
        "images: losses, accuracies, gaps, weight statistics, a verdict and "
        "recommendations.")
    p.add_argument("model", type=Path, help="a .keras model file")
    _add_data_flags(p, limit=5000)
    p.add_argument("--batch-size", type=_positive_int, default=256,
                   help="prediction batch size (default 256)")
    for name, default, text in _THRESHOLDS:
        p.add_argument("--" + name.replace("_", "-"), type=float,
                       default=default, help=f"{text} (default {default})")
    p.add_argument("--json", type=Path, default=None,
                   help="also write the report as JSON to this file")
    p.add_argument("--unsafe", action="store_true",
                   help="load with safe_mode=False (runs code stored in the "
                   "file, e.g. Lambda layers): only for files you trust")
    p.set_defaults(func=_diagnose)
    return p


def load_model(path, unsafe=False):
    """Loads a `.keras` file with keras_regkit's objects registered."""
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
    return keras.saving.load_model(path, safe_mode=not unsafe)


def _diagnose(args):
    from keras_regkit.analysis._common import scale_images
    from keras_regkit.analysis.diagnosis import regularization_diagnosis

    model = load_model(args.model, args.unsafe)
    x_train, y_train, x_val, y_val, split = _data(args)
    print(f"regkit diagnose: {args.model} on {len(x_train)} training / "
          f"{len(x_val)} validation images ({split})", flush=True)
    report = regularization_diagnosis(
        model, scale_images(x_train), y_train, scale_images(x_val), y_val,
        verbose=True, batch_size=args.batch_size,
        **{name: getattr(args, name) for name, _, _ in _THRESHOLDS})
    if args.json:
        from keras_regkit.training.runs._files import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0
