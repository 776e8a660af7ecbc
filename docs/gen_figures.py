"""Regenerates the figures of the documentation site from the examples.

Every PNG under docs/images/ is written by an example script (through
`keras_regkit.analysis`'s plotting functions), never drawn by hand. This
script runs those examples at a small size on the CIFAR-10 sample shipped
in the package (offline) and copies the figures they write:

    python docs/gen_figures.py              # every figure (a few minutes on a CPU)
    python docs/gen_figures.py --only reliability_diagram

| figure | example and arguments |
|---|---|
| `training_curves_unregularized.png`, `validation_curves_regularization.png` | `examples/detect_overfitting.py --quick --train-size 2000 --epochs 20 --plots` |
| `reliability_diagram.png` | `examples/uncertainty.py --epochs 6 --n-iter 20` |

Run it with the TensorFlow backend (the default): `uncertainty.py` trains
through `ProductionModelBuilder`, which feeds tf.data. The figures depend
on the machine's floating-point rounding, so a rerun draws curves of the
same shape, not the same pixels.
"""

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"

# figure name -> (example script, its arguments, the file it writes
# relative to the folder it runs in)
FIGURES = {
    "training_curves_unregularized": (
        "detect_overfitting.py",
        ["--quick", "--train-size", "2000", "--epochs", "20", "--plots",
         "--output", "out"],
        "out/unregularized/training_curves.png"),
    "validation_curves_regularization": (
        "detect_overfitting.py",
        ["--quick", "--train-size", "2000", "--epochs", "20", "--plots",
         "--output", "out"],
        "out/validation_curves.png"),
    "reliability_diagram": (
        "uncertainty.py",
        ["--epochs", "6", "--n-iter", "20", "--out", "out"],
        "out/reliability.png"),
}


def load_example(script):
    """The example module `examples/<script>`, loaded from its file."""
    path = ROOT / "examples" / script
    spec = importlib.util.spec_from_file_location(
        f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES),
                        default=None, help="regenerate these figures only")
    parser.add_argument("--out", type=Path, default=IMAGES,
                        help="where the PNGs go (default docs/images)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    names = args.only or sorted(FIGURES)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}  # one run per (script, arguments), shared by its figures
    for name in names:
        script, example_args, _ = FIGURES[name]
        runs.setdefault((script, tuple(example_args)), []).append(name)
    sys.path.insert(0, str(ROOT))
    for (script, example_args), figures in runs.items():
        with tempfile.TemporaryDirectory(prefix="regkit-figures-") as tmp:
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                print(f"== examples/{script} {' '.join(example_args)}",
                      flush=True)
                load_example(script).main(list(example_args))
            finally:
                os.chdir(cwd)
            for name in figures:
                source = Path(tmp) / FIGURES[name][2]
                target = args.out / f"{name}.png"
                shutil.copyfile(source, target)
                print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
