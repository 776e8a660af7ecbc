"""regularization_diagnosis, quick_regularization_advice, calculate_dropout_rate."""

import math

import keras
import numpy as np
import pytest

from keras_regkit.analysis.diagnosis import calculate_dropout_rate
from keras_regkit.analysis.diagnosis import quick_regularization_advice
from keras_regkit.analysis.diagnosis import regularization_diagnosis
from keras_regkit.analysis.diagnosis import weight_statistics


def passthrough_model(num_classes, dropout=None):
    """A model whose output is its input: Dense with an identity kernel.

    Inputs are probability rows, so the predictions (and the accuracy and
    loss) are whatever the test feeds in. Weight statistics: the identity
    kernel, |w| mean 1/K and zero fraction (K - 1) / K.
    """
    inputs = keras.Input((num_classes,))
    x = keras.layers.Dense(num_classes, use_bias=False,
                           kernel_initializer="identity")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, x)


def rows(num_classes, n, accuracy, confidence=0.8):
    """`n` probability rows predicting class 0 and labels hitting `accuracy`."""
    probs = np.full((n, num_classes), (1 - confidence) / (num_classes - 1),
                    dtype="float32")
    probs[:, 0] = confidence
    labels = np.zeros(n, dtype="int64")
    labels[int(round(n * accuracy)):] = 1
    return probs, labels


def diagnose(num_classes, train_acc, val_acc, **kwargs):
    model = passthrough_model(num_classes)
    x_train, y_train = rows(num_classes, 100, train_acc)
    x_val, y_val = rows(num_classes, 100, val_acc)
    return regularization_diagnosis(model, x_train, y_train, x_val, y_val,
                                    verbose=False, **kwargs)


@pytest.mark.parametrize(
    "num_classes, train_acc, val_acc, verdict",
    [
        (2, 1.0, 0.80, "severe_overfitting"),   # gap 0.20 > 0.15
        (2, 1.0, 0.90, "overfitting"),          # gap 0.10 > 0.08
        (2, 0.60, 0.60, "underfitting"),        # gap 0 < 0.02, val < 0.75
        (3, 0.90, 0.90, "over_regularized"),    # zero fraction 2/3 > 0.5
        (2, 0.90, 0.90, "good"),                # zero fraction 1/2, not > 0.5
        (2, 0.80, 0.79, "good"),                # gap 0.01 but val >= 0.75
        (2, 0.95, 0.90, "good"),                # gap 0.05 in [0.02, 0.08]
    ],
)
def test_each_verdict_branch(num_classes, train_acc, val_acc, verdict):
    report = diagnose(num_classes, train_acc, val_acc)
    assert report["verdict"] == verdict
    assert report["acc_gap"] == pytest.approx(train_acc - val_acc, abs=1e-9)
    assert report["recommendations"] and all(
        isinstance(r, str) for r in report["recommendations"])


def test_the_first_matching_rule_wins():
    # Overfitting and a 2/3 near-zero fraction: the gap rule comes first.
    assert diagnose(3, 1.0, 0.9)["verdict"] == "overfitting"


def test_every_threshold_can_be_overridden():
    assert diagnose(2, 1.0, 0.90, overfit_gap=0.2,
                    severe_gap=0.3)["verdict"] == "good"
    assert diagnose(2, 1.0, 0.90, severe_gap=0.05)["verdict"] == (
        "severe_overfitting")
    assert diagnose(2, 0.8, 0.79, underfit_acc=0.9)["verdict"] == (
        "underfitting")
    assert diagnose(2, 0.95, 0.90, underfit_gap=0.06,
                    underfit_acc=0.95)["verdict"] == "underfitting"
    assert diagnose(2, 0.9, 0.9, zero_fraction_threshold=0.4)["verdict"] == (
        "over_regularized")
    report = diagnose(3, 0.9, 0.9, zero_fraction_threshold=0.7)
    assert report["verdict"] == "good"
    assert report["thresholds"]["zero_fraction_threshold"] == 0.7


def test_losses_accuracies_and_weights_by_hand():
    report = diagnose(2, 1.0, 0.75)
    assert report["train_acc"] == 1.0 and report["val_acc"] == 0.75
    # Train: every row right with p = 0.8; val: 75 right (0.8), 25 wrong (0.2).
    assert report["train_loss"] == pytest.approx(-math.log(0.8), abs=1e-6)
    val_loss = -(0.75 * math.log(0.8) + 0.25 * math.log(0.2))
    assert report["val_loss"] == pytest.approx(val_loss, abs=1e-6)
    assert report["loss_gap"] == pytest.approx(val_loss + math.log(0.8),
                                               abs=1e-6)
    assert report["weight_mean"] == pytest.approx(0.5)   # |eye(2)|
    assert report["weight_std"] == pytest.approx(0.5)
    assert report["zero_fraction"] == pytest.approx(0.5)


def test_weight_statistics_use_each_layers_first_array():
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, name="dense")(inputs)
    x = keras.layers.BatchNormalization()(x)  # first array: gamma (ones)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    model.get_layer("dense").set_weights(
        [np.array([[0.0, 2.0], [1e-7, -4.0]]), np.array([9.0, 9.0])])
    stats = weight_statistics(model)
    w = np.array([0.0, 2.0, 1e-7, 4.0, 1.0, 1.0])  # kernel then gamma; no bias
    assert stats["weight_mean"] == pytest.approx(w.mean(), rel=1e-6)
    assert stats["weight_std"] == pytest.approx(w.std(), rel=1e-6)
    assert stats["zero_fraction"] == pytest.approx(2 / 6)


def test_evaluates_in_inference_mode():
    model = passthrough_model(2, dropout=0.9)  # training mode would scramble
    x_train, y_train = rows(2, 100, 1.0)
    x_val, y_val = rows(2, 100, 0.8)
    first = regularization_diagnosis(model, x_train, y_train, x_val, y_val,
                                     verbose=False)
    second = regularization_diagnosis(model, x_train, y_train, x_val, y_val,
                                      verbose=False)
    assert first == second
    assert first["train_loss"] == pytest.approx(-math.log(0.8), abs=1e-6)


def test_one_hot_labels_and_batch_iterables_match_integer_labels():
    model = passthrough_model(3)
    x_train, y_train = rows(3, 60, 0.9)
    x_val, y_val = rows(3, 60, 0.7)
    base = regularization_diagnosis(model, x_train, y_train, x_val, y_val,
                                    verbose=False)
    one_hot = regularization_diagnosis(
        model, x_train, np.eye(3)[y_train], x_val, np.eye(3)[y_val],
        verbose=False)
    train_batches = [(x_train[i:i + 16], y_train[i:i + 16])
                     for i in range(0, 60, 16)]
    val_batches = [(x_val[:30], np.eye(3)[y_val[:30]]),
                   (x_val[30:], np.eye(3)[y_val[30:]])]
    batches = regularization_diagnosis(model, train_batches, None,
                                       val_batches, None, verbose=False)
    for report in (one_hot, batches):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert report[key] == pytest.approx(base[key], abs=1e-6)


@pytest.mark.requires_tensorflow
def test_accepts_tf_data_datasets():
    import tensorflow as tf

    model = passthrough_model(2)
    x_train, y_train = rows(2, 50, 1.0)
    x_val, y_val = rows(2, 50, 0.8)
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(8)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(8)
    report = regularization_diagnosis(model, train, None, val, None,
                                      verbose=False)
    assert report["train_acc"] == 1.0 and report["val_acc"] == 0.8
    assert report["verdict"] == "severe_overfitting"


def test_logit_outputs_are_passed_through_softmax():
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(2, use_bias=False,
                                 kernel_initializer="identity")(inputs)
    model = keras.Model(inputs, outputs)
    logits = np.tile(np.float32([[2.0, -1.0]]), (10, 1))
    report = regularization_diagnosis(model, logits, np.zeros(10, "int64"),
                                      logits, np.zeros(10, "int64"),
                                      verbose=False)
    p = math.exp(2) / (math.exp(2) + math.exp(-1))
    assert report["train_loss"] == pytest.approx(-math.log(p), abs=1e-6)


def test_verbose_prints_the_report(capsys):
    model = passthrough_model(2)
    x_train, y_train = rows(2, 100, 1.0)
    x_val, y_val = rows(2, 100, 0.8)
    regularization_diagnosis(model, x_train, y_train, x_val, y_val)
    out = capsys.readouterr().out
    assert "Verdict: SEVERE OVERFITTING" in out
    assert "Multiply the L2 strength" in out
    assert "val acc  0.8000" in out


def test_missing_validation_data_is_rejected():
    model = passthrough_model(2)
    x, y = rows(2, 10, 1.0)
    with pytest.raises(ValueError, match="`X_val`"):
        regularization_diagnosis(model, x, y, verbose=False)


def test_invalid_threshold_is_rejected():
    with pytest.raises(ValueError, match="`underfit_acc`.*Received: "
                       "underfit_acc=1.5"):
        diagnose(2, 1.0, 0.9, underfit_acc=1.5)


def test_array_inputs_need_labels():
    model = passthrough_model(2)
    x, y = rows(2, 10, 1.0)
    with pytest.raises(ValueError, match="`y`"):
        regularization_diagnosis(model, x, None, x, y, verbose=False)


@pytest.mark.parametrize(
    "args, verdict",
    [
        # The reference recipe's own example:
        ((0.95, 0.78, 0.15, 0.68), "SEVERE OVERFITTING"),
        ((0.80, 0.78, 0.20, 0.75), "SEVERE OVERFITTING"),  # loss gap 0.55
        ((0.90, 0.80, 0.30, 0.50), "OVERFITTING"),         # acc gap 0.10
        ((0.80, 0.79, 0.30, 0.65), "OVERFITTING"),         # loss gap 0.35
        ((0.60, 0.58, 1.20, 1.25), "UNDERFITTING"),
        ((0.86, 0.85, 0.40, 0.45), "PERFECT"),
        ((0.75, 0.72, 0.60, 0.70), "UNCLEAR"),   # small gap, val not > 0.8
        ((0.80, 0.86, 0.50, 0.40), "UNCLEAR"),   # |gap| 0.06, not < 0.05
        ((0.69, 0.71, 0.90, 0.95), "UNCLEAR"),   # only one accuracy < 0.7
    ],
)
def test_quick_advice_branches(args, verdict):
    advice = quick_regularization_advice(*args)
    assert advice.split(" (")[0] == verdict


def test_quick_advice_recommends_the_seed_changes():
    assert "dropout by 0.2" in quick_regularization_advice(0.95, 0.78, 0.15,
                                                           0.68)
    assert "L2 by 10" in quick_regularization_advice(0.95, 0.78, 0.15, 0.68)
    assert "L2 by 3" in quick_regularization_advice(0.9, 0.8, 0.3, 0.5)


def test_quick_advice_rejects_non_numbers():
    with pytest.raises(ValueError, match="`val_loss`"):
        quick_regularization_advice(0.9, 0.8, 0.3, "high")


@pytest.mark.parametrize(
    "layer_size, dataset_size, rate",
    [
        (256, 50_000, 0.5),
        (64, 50_000, 0.3),            # 0.5 x 0.6
        (1024, 50_000, 0.6),          # 0.5 x 1.2
        (256, 500, 0.65),             # 0.5 x 1.3
        (256, 200_000, 0.35),         # 0.5 x 0.7
        (64, 500, 0.39),              # 0.5 x 0.6 x 1.3
        (64, 200_000, 0.21),          # 0.5 x 0.6 x 0.7
        (1024, 200_000, 0.42),        # 0.5 x 1.2 x 0.7
        (1024, 500, 0.7),             # 0.78 clipped to 0.7
        (128, 1000, 0.5),             # boundaries are not strict matches
        (512, 100_000, 0.5),
        (127, 999, 0.39),
        (513, 100_001, 0.42),
        (1, 1, 0.39),
    ],
)
def test_dropout_rate_heuristic(layer_size, dataset_size, rate):
    assert calculate_dropout_rate(layer_size, dataset_size) == pytest.approx(
        rate, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"layer_size": 0, "dataset_size": 10}, "layer_size"),
     ({"layer_size": 64, "dataset_size": 10.5}, "dataset_size")],
)
def test_dropout_rate_rejects_bad_sizes(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        calculate_dropout_rate(**kwargs)


def test_weight_statistics_ignore_non_trainable_state_such_as_mc_switches():
    import keras
    import numpy as np

    from keras_regkit.analysis.diagnosis import weight_statistics
    from keras_regkit.layers import MCDropout

    inputs = keras.Input((6,))
    x = keras.layers.Dense(4)(inputs)
    x = MCDropout(0.5, mc=True)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    kernels = [np.abs(layer.get_weights()[0]).ravel()
               for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    w = np.concatenate(kernels)
    stats = weight_statistics(model)
    assert stats["weight_mean"] == pytest.approx(w.mean(), rel=1e-6)
    assert stats["zero_fraction"] == pytest.approx((w < 1e-6).mean())
