"""Reading a trained model's fit: overfitting, underfitting, over-regularization.

The reference recipe's three rules of thumb: `regularization_diagnosis` (a verdict from
the train/validation gaps and the weight statistics),
`quick_regularization_advice` (the same from four numbers) and
`calculate_dropout_rate` (a starting dropout rate from layer and data size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._validation import check_float, check_int
from keras_regkit._walk import walk_layers
from keras_regkit.analysis._common import loss_and_accuracy
from keras_regkit.analysis._common import predict_with_labels

VERDICTS = ("severe_overfitting", "overfitting", "underfitting",
            "over_regularized", "good")

RECOMMENDATIONS = {
    "severe_overfitting": [
        "Increase dropout by 0.1-0.2.",
        "Multiply the L2 strength (weight decay) by 10.",
        "Add data augmentation.",
        "Reduce model capacity (fewer layers or units).",
    ],
    "overfitting": [
        "Increase dropout by 0.1.",
        "Increase the L2 strength (weight decay).",
        "Add batch normalization.",
    ],
    "underfitting": [
        "Reduce dropout.",
        "Reduce the L2 strength (weight decay).",
        "Increase model capacity (more layers or units).",
    ],
    "over_regularized": [
        "Reduce the L1/L2 strength: most weights are driven to zero.",
        "Reduce dropout.",
    ],
    "good": ["Regularization looks balanced: keep the current settings."],
}

_TITLES = {
    "severe_overfitting": "SEVERE OVERFITTING",
    "overfitting": "MODERATE OVERFITTING",
    "underfitting": "UNDERFITTING",
    "over_regularized": "OVER-REGULARIZED",
    "good": "GOOD BALANCE",
}


def weight_statistics(model: keras.Model,
                      zero_tol: float = 1e-6) -> dict[str, float]:
    """The reference recipe's weight statistics (first trainable weights).

    Each layer counts with its first trainable weight.

    Args:
        model: a Keras model (nested models are walked).
        zero_tol: magnitude under which a weight counts as zero. Defaults to
            `1e-6`.

    Returns:
        A dict with `weight_mean` and `weight_std` (of |w|) and
        `zero_fraction` (the fraction with |w| < `zero_tol`).
    """
    arrays: list[np.ndarray] = []
    for layer in walk_layers(model, wrapped=False, containers=False):
        # The first trainable weight (the reference recipe's "first weight array"), so
        # state such as an MC-dropout switch or a seed never counts.
        weights = layer.trainable_weights
        if weights:
            value = keras.ops.convert_to_numpy(weights[0].value)
            arrays.append(np.abs(np.asarray(value, "float64")).ravel())
    if not arrays:
        return {"weight_mean": 0.0, "weight_std": 0.0, "zero_fraction": 0.0}
    w = np.concatenate(arrays)
    return {
        "weight_mean": float(w.mean()),
        "weight_std": float(w.std()),
        "zero_fraction": float((w < zero_tol).mean()),
    }


def diagnosis_verdict(acc_gap: float, val_acc: float, zero_fraction: float,
                      severe_gap: float = 0.15, overfit_gap: float = 0.08,
                      underfit_gap: float = 0.02, underfit_acc: float = 0.75,
                      zero_fraction_threshold: float = 0.5) -> str:
    """The reference recipe's decision rule; the first matching verdict wins."""
    if acc_gap > severe_gap:
        return "severe_overfitting"
    if acc_gap > overfit_gap:
        return "overfitting"
    if acc_gap < underfit_gap and val_acc < underfit_acc:
        return "underfitting"
    if zero_fraction > zero_fraction_threshold:
        return "over_regularized"
    return "good"


def regularization_diagnosis(
    model: keras.Model, X_train: np.ndarray | Iterable[Any],
    y_train: npt.ArrayLike | None = None,
    X_val: np.ndarray | Iterable[Any] | None = None,
    y_val: npt.ArrayLike | None = None, verbose: bool = True,
    batch_size: int = 256, severe_gap: float = 0.15,
    overfit_gap: float = 0.08, underfit_gap: float = 0.02,
    underfit_acc: float = 0.75, zero_fraction_threshold: float = 0.5,
    zero_tol: float = 1e-6,
) -> dict[str, Any]:
    """Diagnoses over- or under-regularization of a trained classifier.

    Both sets are predicted in inference mode (dropout off, batch norm on
    its moving statistics); loss is the plain cross-entropy of the
    predictions (no label smoothing, no penalty terms), so train and
    validation are comparable whatever the model was compiled with. The
    model need not be compiled. `loss_gap = val_loss - train_loss` and
    `acc_gap = train_acc - val_acc`. The verdict is the first rule that
    matches: `acc_gap > severe_gap` "severe_overfitting", `acc_gap >
    overfit_gap` "overfitting", `acc_gap < underfit_gap` and `val_acc <
    underfit_acc` "underfitting", `zero_fraction > zero_fraction_threshold`
    "over_regularized", else "good".

    Args:
        model: a Keras classifier with a (N, classes) output of
            probabilities (logits are passed through softmax).
        X_train: training inputs, or a dataset of `(inputs, labels)`
            batches (then `y_train` is None).
        y_train: integer or one-hot labels. Defaults to `None`.
        X_val: validation inputs or dataset.
        y_val: validation labels. Defaults to `None`.
        verbose: print the report. Defaults to `True`.
        batch_size: prediction batch size. Defaults to `256`.
        severe_gap: accuracy gap above which overfitting is severe.
            Defaults to `0.15`.
        overfit_gap: accuracy gap above which the model overfits. Defaults
            to `0.08`.
        underfit_gap: accuracy gap under which a model with low validation
            accuracy underfits. Defaults to `0.02`.
        underfit_acc: validation accuracy under which a small gap means
            underfitting. Defaults to `0.75`.
        zero_fraction_threshold: fraction of near-zero weights above which
            the model is over-regularized. Defaults to `0.5`.
        zero_tol: magnitude under which a weight counts as zero. Defaults
            to `1e-6`.

    Returns:
        A dict: `train_loss`, `val_loss`, `train_acc`, `val_acc`,
        `loss_gap`, `acc_gap`, `weight_mean`, `weight_std`,
        `zero_fraction`, `verdict` (one of `VERDICTS`), `recommendations`
        (list of str) and `thresholds` (the values used).

    Example:

    >>> # A stand-in for a trained classifier: class 1 when x > 0.
    >>> model = keras.Sequential([keras.Input((1,)),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[-4.0, 4.0]]), np.zeros(2)])
    >>> x_train = x_val = np.linspace(-1, 1, 10).reshape(-1, 1)
    >>> y_train = (x_train[:, 0] > 0).astype("int64")
    >>> y_val = np.where(np.arange(10) == 0, 1, y_train)  # one label differs
    >>> report = regularization_diagnosis(model, x_train, y_train,
    ...                                   x_val, y_val, verbose=False)
    >>> report["verdict"], round(report["acc_gap"], 2)
    ('overfitting', 0.1)
    """
    if X_val is None:
        raise ValueError("Invalid value received for argument `X_val`. "
                         "Expected validation inputs or a dataset. "
                         "Received: X_val=None")
    thresholds = {
        "severe_gap": check_float("severe_gap", severe_gap, 0.0, 1.0,
                                  high_inclusive=True),
        "overfit_gap": check_float("overfit_gap", overfit_gap, 0.0, 1.0,
                                  high_inclusive=True),
        "underfit_gap": check_float("underfit_gap", underfit_gap, 0.0, 1.0,
                                  high_inclusive=True),
        "underfit_acc": check_float("underfit_acc", underfit_acc, 0.0, 1.0,
                                    high_inclusive=True),
        "zero_fraction_threshold": check_float(
            "zero_fraction_threshold", zero_fraction_threshold, 0.0, 1.0,
            high_inclusive=True),
    }
    zero_tol = check_float("zero_tol", zero_tol, 0.0)
    batch_size = check_int("batch_size", batch_size, 1)
    _check_lengths("X_train", X_train, "y_train", y_train)
    _check_lengths("X_val", X_val, "y_val", y_val)
    train_loss, train_acc = loss_and_accuracy(
        *predict_with_labels(model, X_train, y_train, batch_size))
    val_loss, val_acc = loss_and_accuracy(
        *predict_with_labels(model, X_val, y_val, batch_size))
    report: dict[str, Any] = {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "train_acc": train_acc,
        "val_acc": val_acc,
        "loss_gap": val_loss - train_loss,
        "acc_gap": train_acc - val_acc,
        **weight_statistics(model, zero_tol),
    }
    verdict = diagnosis_verdict(report["acc_gap"], val_acc,
                                report["zero_fraction"], **thresholds)
    report["verdict"] = verdict
    report["recommendations"] = list(RECOMMENDATIONS[verdict])
    report["thresholds"] = thresholds
    if verbose:
        print(format_diagnosis(report))
    return report


def _check_lengths(x_name: str, x: object, y_name: str, y: object) -> None:
    """Refuses arrays of images and labels of different lengths."""
    if y is None or not hasattr(x, "__len__") or not hasattr(y, "__len__"):
        return
    if len(x) != len(y):
        raise ValueError(
            f"Invalid value received for argument `{y_name}`. Expected one "
            f"label per input of `{x_name}` ({len(x)}). Received: "
            f"{len(y)} labels")


def format_diagnosis(report: Mapping[str, Any]) -> str:
    """The printable text of a `regularization_diagnosis` report."""
    lines = [
        "Regularization diagnosis",
        f"  train loss {report['train_loss']:.4f}   "
        f"val loss {report['val_loss']:.4f}   "
        f"gap {report['loss_gap']:+.4f}",
        f"  train acc  {report['train_acc']:.4f}   "
        f"val acc  {report['val_acc']:.4f}   "
        f"gap {report['acc_gap']:+.4f}",
        f"  |w| mean {report['weight_mean']:.4g}   std "
        f"{report['weight_std']:.4g}   near-zero fraction "
        f"{report['zero_fraction']:.2%}",
        f"Verdict: {_TITLES[report['verdict']]}",
    ]
    lines += [f"  - {text}" for text in report["recommendations"]]
    return "\n".join(lines)


def quick_regularization_advice(train_acc: float, val_acc: float,
                                train_loss: float, val_loss: float) -> str:
    """The reference recipe's decision tree from final accuracies and losses.

    First match wins: accuracy gap > 0.15 or loss gap > 0.5 "SEVERE
    OVERFITTING"; accuracy gap > 0.08 or loss gap > 0.3 "OVERFITTING";
    both accuracies < 0.7 "UNDERFITTING"; |accuracy gap| < 0.05 and
    validation accuracy > 0.8 "PERFECT"; otherwise "UNCLEAR".

    Args:
        train_acc: final training accuracy.
        val_acc: final validation accuracy.
        train_loss: final training loss.
        val_loss: final validation loss.

    Returns:
        The advice, one string starting with the verdict in capitals.

    Example:

    >>> quick_regularization_advice(0.95, 0.78, 0.15, 0.68)[:18]
    'SEVERE OVERFITTING'
    """
    train_acc = check_float("train_acc", train_acc, 0.0, 1.0,
                            high_inclusive=True)
    val_acc = check_float("val_acc", val_acc, 0.0, 1.0, high_inclusive=True)
    train_loss = check_float("train_loss", train_loss)
    val_loss = check_float("val_loss", val_loss)
    acc_gap = train_acc - val_acc
    loss_gap = val_loss - train_loss
    gaps = f"(accuracy gap {acc_gap:.3f}, loss gap {loss_gap:.3f})"
    if acc_gap > 0.15 or loss_gap > 0.5:
        return (f"SEVERE OVERFITTING {gaps}: increase dropout by 0.2 and "
                "multiply L2 by 10.")
    if acc_gap > 0.08 or loss_gap > 0.3:
        return (f"OVERFITTING {gaps}: increase dropout by 0.1 and "
                "multiply L2 by 3.")
    if train_acc < 0.7 and val_acc < 0.7:
        return (f"UNDERFITTING {gaps}: reduce regularization or increase "
                "model capacity.")
    if abs(acc_gap) < 0.05 and val_acc > 0.8:
        return f"PERFECT {gaps}: keep the current regularization."
    return (f"UNCLEAR {gaps}: train for more epochs or analyse the learning "
            "curves.")


def calculate_dropout_rate(layer_size: int, dataset_size: int) -> float:
    """The reference recipe's starting dropout rate for a layer.

    Starts at 0.5; times 0.6 for a layer under 128 units, times 1.2 over
    512; times 1.3 for under 1,000 training examples, times 0.7 over
    100,000; clipped to [0.1, 0.7].

    Args:
        layer_size: number of units of the layer (>= 1).
        dataset_size: number of training examples (>= 1).

    Returns:
        The rate, a float.

    Example:

    >>> calculate_dropout_rate(256, 50_000)
    0.5
    """
    layer_size = check_int("layer_size", layer_size, 1)
    dataset_size = check_int("dataset_size", dataset_size, 1)
    rate = 0.5
    if layer_size < 128:
        rate *= 0.6
    elif layer_size > 512:
        rate *= 1.2
    if dataset_size < 1000:
        rate *= 1.3
    elif dataset_size > 100_000:
        rate *= 0.7
    return float(min(max(rate, 0.1), 0.7))
