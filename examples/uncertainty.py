"""Monte Carlo dropout, calibration and diagnosis of a trained CNN.

Trains the "small" preset's CNN (batch norm, spatial dropout and dropout)
with `ProductionModelBuilder` on CIFAR-10 images, then:

1. samples it with Monte Carlo dropout (only dropout layers sample; batch
   norm stays on its moving statistics) and compares the MC-averaged
   accuracy with the deterministic one;
2. flags low-confidence predictions with `classify_with_uncertainty` and
   shows they are the less accurate ones;
3. compares the uncertainty on CIFAR-10 images with that on random-noise
   images (mutual information is the epistemic part);
4. measures the expected calibration error (deterministic and MC) and
   writes a reliability diagram;
5. prints the regularization diagnosis;
6. shows what the common `model(x, training=True)` recipe does instead.

    python examples/uncertainty.py --quick
    python examples/uncertainty.py --epochs 15 --out runs/uncertainty

Images: the 2,000 + 500 sample shipped in the package (offline).
"""

import argparse
from pathlib import Path

import keras
import numpy as np

from keras_regkit.analysis import classify_with_uncertainty
from keras_regkit.analysis import expected_calibration_error
from keras_regkit.analysis import mc_dropout_prediction
from keras_regkit.analysis import plot_reliability_diagram
from keras_regkit.analysis import regularization_diagnosis
from keras_regkit.training.builder import ProductionModelBuilder
from keras_regkit.data import load_cifar10_sample


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 training and 200 validation images, 2 "
                        "epochs, 20 MC passes")
    parser.add_argument("--train-size", type=int, default=None,
                        help="training images (default all 2,000 of the "
                        "sample; 1,000 with --quick)")
    parser.add_argument("--val-size", type=int, default=None,
                        help="validation images (default all 500; 200 "
                        "with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 10 (2 with --quick)")
    parser.add_argument("--n-iter", type=int, default=None,
                        help="Monte Carlo passes (default 50; 20 with "
                        "--quick)")
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="std of the predicted class above which a "
                        "prediction is low-confidence (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/uncertainty")
    args = parser.parse_args(argv)
    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    # Flags given explicitly win over --quick's sizes.
    if args.train_size is None:
        args.train_size = 1000 if args.quick else len(x_train)
    if args.val_size is None:
        args.val_size = 200 if args.quick else len(x_val)
    x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    x_val, y_val = x_val[:args.val_size], y_val[:args.val_size]
    if args.epochs is None:
        args.epochs = 2 if args.quick else 10
    if args.n_iter is None:
        args.n_iter = 20 if args.quick else 50
    y_train, y_val = y_train.ravel(), y_val.ravel()
    x_val = x_val.astype("float32") / 255.0
    out = Path(args.out)

    print(f"Training the 'small' CNN on {len(x_train)} images for "
          f"{args.epochs} epochs...")
    # --8<-- [start:train]
    builder = ProductionModelBuilder((32, 32, 3), 10, "small", seed=args.seed)
    model, _ = builder.train(x_train, y_train, x_val, y_val,
                             epochs=args.epochs, verbose=2)
    deterministic = model.predict(x_val, verbose=0)
    # --8<-- [end:train]

    print(f"\n1. Monte Carlo dropout, {args.n_iter} passes over "
          f"{len(x_val)} validation images (one vectorized predict)")
    # --8<-- [start:mc]
    mean, std, samples = mc_dropout_prediction(model, x_val, args.n_iter,
                                               seed=args.seed)
    print(f"   samples {samples.shape}; accuracy deterministic "
          f"{(deterministic.argmax(1) == y_val).mean():.4f}, MC mean "
          f"{(mean.argmax(1) == y_val).mean():.4f}")

    print("\n2. Low-confidence predictions")
    result = classify_with_uncertainty(model, x_val, args.n_iter,
                                       args.threshold, seed=args.seed)
    right = result["predicted_class"] == y_val
    low = result["low_confidence"]
    # --8<-- [end:mc]
    print(f"   {low.mean():.1%} flagged (uncertainty > {args.threshold}); "
          f"accuracy flagged {right[low].mean() if low.any() else np.nan:.4f}"
          f", confident {right[~low].mean() if (~low).any() else np.nan:.4f}")

    print("\n3. CIFAR-10 images against uniform noise")
    noise = np.random.default_rng(args.seed).uniform(
        size=x_val[:200].shape).astype("float32")
    on_noise = classify_with_uncertainty(model, noise, args.n_iter,
                                         seed=args.seed)
    for name, r in (("CIFAR-10", result), ("noise", on_noise)):
        print(f"   {name:9s} std of class {r['uncertainty'].mean():.4f}, "
              f"predictive entropy {r['predictive_entropy'].mean():.4f}, "
              f"mutual information {r['mutual_information'].mean():.4f}")

    print("\n4. Calibration")
    # --8<-- [start:calibration]
    print(f"   ECE deterministic "
          f"{expected_calibration_error(y_val, deterministic):.4f}, MC mean "
          f"{expected_calibration_error(y_val, mean):.4f}")
    plot_reliability_diagram(y_val, mean, path=out / "reliability.png",
                             title="MC dropout")
    # --8<-- [end:calibration]
    print(f"   reliability diagram: {out / 'reliability.png'}")

    print("\n5. Diagnosis")
    regularization_diagnosis(model, x_train[:1000].astype("float32") / 255.0,
                             y_train[:1000], x_val, y_val)

    print("\n6. The model(x, training=True) recipe (batch norm on batch "
          "statistics)")
    batch = x_val[:64]
    recipe = np.mean([keras.ops.convert_to_numpy(model(batch, training=True))
                      for _ in range(args.n_iter)], axis=0)
    ours = mean[:64]
    print(f"   mean |MC mean - deterministic|: ours "
          f"{np.abs(ours - deterministic[:64]).mean():.4f}, recipe "
          f"{np.abs(recipe - deterministic[:64]).mean():.4f} (the recipe "
          "also moved batch norm's statistics: the model is now changed)")
    keras.backend.clear_session()


if __name__ == "__main__":
    main()
