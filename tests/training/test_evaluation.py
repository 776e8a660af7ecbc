"""Probabilities, accuracy and loss of a trained model (training.evaluation)."""

import keras
import numpy as np
import pytest

from keras_regkit.training.evaluation import evaluate_model
from keras_regkit.training.evaluation import predict_probabilities


def _model(scale=1.0):
    """Softmax over 3 classes of a fixed linear map of the mean colour."""
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([scale * np.eye(3, dtype="float32") * 4.0,
                       np.zeros(3, "float32")])
    return model


def _images(n=12, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (n, 4, 4, 3)).astype("uint8")


def test_accuracy_and_loss_by_hand_for_every_label_form():
    model, x = _model(), _images()
    probs = keras.ops.convert_to_numpy(model(x.astype("float32") / 255.0))
    labels = np.arange(len(x)) % 3
    expected_accuracy = np.mean(probs.argmax(1) == labels)
    expected_loss = -np.mean(np.log(probs[np.arange(len(x)), labels]))
    forms = [labels, labels[:, None], np.eye(3)[labels]]
    for y in forms:
        result = evaluate_model(model, x, y, batch_size=5)
        assert result["accuracy"] == pytest.approx(expected_accuracy)
        # float32 probabilities of order 0.1-1: 1e-5 relative in the loss.
        assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_uint8_and_unit_float_images_give_the_same_probabilities():
    model, x = _model(), _images()
    np.testing.assert_allclose(
        predict_probabilities(model, x),
        predict_probabilities(model, x.astype("float32") / 255.0),
        rtol=1e-6, atol=1e-7)
    assert predict_probabilities(model, x).dtype == np.float32


def test_flip_views_are_averaged():
    # The mean colour does not change under a mirror, so this model
    # predicts the same either way; a model of one pixel does not.
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(
        3, activation="softmax", kernel_initializer=keras.initializers
        .RandomNormal(stddev=1.0, seed=1))(x))
    images = _images(6).astype("float32") / 255.0
    plain = keras.ops.convert_to_numpy(model(images))
    mirrored = keras.ops.convert_to_numpy(model(images[:, :, ::-1]))
    assert np.abs(plain - mirrored).max() > 1e-3
    np.testing.assert_allclose(
        predict_probabilities(model, images, tta="flip"),
        (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_a_zero_probability_costs_a_bounded_loss():
    # A huge scale makes the softmax exactly 0 for the wrong classes in
    # float32; the loss clips it at 1e-7, so each such image costs
    # -log(1e-7) = 16.12, not infinity.
    model = _model(scale=1e4)
    x = np.zeros((2, 4, 4, 3), "uint8")
    x[:, :, :, 0] = 255  # every image is red: class 0 with certainty
    result = evaluate_model(model, x, np.array([0, 1]))
    assert result["accuracy"] == 0.5
    assert result["loss"] == pytest.approx(-np.log(1e-7) / 2, rel=1e-6)


def test_one_label_per_image_is_required():
    with pytest.raises(ValueError, match=r"`y`.*one label per image \(12\)"):
        evaluate_model(_model(), _images(), np.zeros(5, "int64"))
