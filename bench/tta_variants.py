"""Test-time augmentation variants, scored on saved models of the fast preset.

`peer_airbench.py --save-models DIR` keeps each trained model; this script
scores each on the same 5,000 validation images (seeded split 0 of
../shared/data) with the view sets and averaging rules worth comparing:

- the views: the image and its mirror, each also shifted by one pixel
  diagonally both ways (`diag2`: what `tta="flip_translate"` uses), along
  both diagonals (`diag4`), or in all eight directions (`all8`);
- the padding of a shifted image: repeated edge pixels or a reflection;
- the average: of probabilities, or of log-probabilities (the same ranking
  as averaging logits, which is what airbench does);
- the weights: every view alike, or half the weight on the unshifted pair
  (airbench's).

    python bench/tta_variants.py DIR/muon8_b2000_seed0.keras [...]

Each model is run once per distinct view; the combinations reuse those
predictions.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import SHARED  # noqa: E402

SHIFTS = {
    "diag2": ((1, 1), (-1, -1)),
    "diag4": ((1, 1), (-1, -1), (1, -1), (-1, 1)),
    "all8": ((1, 1), (-1, -1), (1, -1), (-1, 1),
             (0, 1), (0, -1), (1, 0), (-1, 0)),
}
PADDINGS = ("edge", "reflect")


def shifted(images, dy, dx, padding):
    """NHWC `images` moved by (dy, dx) pixels, the border filled by `padding`."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=padding)
    h, w = images.shape[1:3]
    return padded[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def view_probabilities(model, images, batch_size=1000):
    """{(mirrored, dy, dx, padding): probabilities} over every needed view."""
    out = {}
    for mirrored in (False, True):
        base = images[:, :, ::-1] if mirrored else images
        out[(mirrored, 0, 0, None)] = model.predict(
            base, batch_size=batch_size, verbose=0).astype("float64")
        for padding in PADDINGS:
            for dy, dx in SHIFTS["all8"]:
                out[(mirrored, dy, dx, padding)] = model.predict(
                    shifted(base, dy, dx, padding), batch_size=batch_size,
                    verbose=0).astype("float64")
    return out


def combine(views, shifts, padding, centre_weight, space):
    """The weighted mean score of the unshifted pair and the shifted views."""
    def score(p):
        return np.log(np.maximum(p, 1e-12)) if space == "log" else p

    total = 0.0
    for mirrored in (False, True):
        total = total + centre_weight / 2 * score(
            views[(mirrored, 0, 0, None)])
        for dy, dx in shifts:
            total = total + (1 - centre_weight) / (2 * len(shifts)) * score(
                views[(mirrored, dy, dx, padding)])
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path,
                        help="saved .keras models of the fast preset")
    parser.add_argument("--data-dir", default=str(SHARED))
    args = parser.parse_args(argv)
    import keras

    import keras_regkit  # noqa: F401  (registers the layers)

    from time_to_accuracy import split_cifar10  # imports Keras

    _, _, x_val, y_val = split_cifar10(args.data_dir)
    x_val = x_val.astype("float32") / 255.0

    def accuracy(scores):
        return float((np.argmax(scores, -1) == y_val).mean())

    for path in args.models:
        views = view_probabilities(keras.saving.load_model(path), x_val)
        plain = views[(False, 0, 0, None)]
        print(f"{path.name}: no TTA {accuracy(plain):.4f}, mirror "
              f"{accuracy(plain + views[(True, 0, 0, None)]):.4f}")
        print(f"  {'views':6s} {'padding':8s} {'average':8s} "
              f"{'all alike':>9s} {'half on unshifted':>17s}")
        for name, shifts in SHIFTS.items():
            for padding in PADDINGS:
                for space in ("prob", "log"):
                    alike = combine(views, shifts, padding,
                                    1 / (1 + len(shifts)), space)
                    half = combine(views, shifts, padding, 0.5, space)
                    print(f"  {name:6s} {padding:8s} {space:8s} "
                          f"{accuracy(alike):9.4f} {accuracy(half):17.4f}")


if __name__ == "__main__":
    main()
