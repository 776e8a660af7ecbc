"""Tests for keras_regkit.constraints: spectral-norm bound, centred norm."""

import numpy as np
import pytest

import keras
from keras import ops

from keras_regkit import constraints
from keras_regkit.constraints import CenteredUnitNorm
from keras_regkit.constraints import SpectralNormConstraint
from keras_regkit.constraints import spectral_norm
from tests.helpers import random_batch
from tests.helpers import roundtrip_config
from tests.helpers import save_and_reload


def _weight(shape, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=shape)).astype("float32")


def _apply(constraint, w):
    return ops.convert_to_numpy(constraint(ops.convert_to_tensor(w)))


def _sigma(w):
    return np.linalg.norm(w.reshape(-1, w.shape[-1]).astype("float64"), 2)


# SpectralNormConstraint


@pytest.mark.parametrize("shape", [(64, 32), (3, 3, 8, 16), (10, 200)])
@pytest.mark.parametrize("max_value", [1.0, 2.5])
def test_spectral_norm_bound_is_tight(shape, max_value):
    w = _weight(shape, scale=3.0)
    out = _apply(SpectralNormConstraint(max_value), w)
    np.testing.assert_allclose(_sigma(out), max_value, rtol=1e-3)
    # A pure rescaling: the direction of the kernel is kept.
    np.testing.assert_allclose(out, w * max_value / _sigma(w), rtol=1e-3,
                               atol=1e-6)


def test_spectral_norm_inside_bound_is_unchanged():
    w = _weight((20, 6))
    w *= 0.5 / _sigma(w)
    np.testing.assert_array_equal(_apply(SpectralNormConstraint(1.0), w), w)


def test_exact_spectral_norm_matches_numpy():
    w = _weight((3, 3, 16, 32), seed=3)
    value = float(ops.convert_to_numpy(spectral_norm(w)))
    np.testing.assert_allclose(value, _sigma(w), rtol=1e-5)


def test_power_iterations_estimate_with_spectral_gap():
    rng = np.random.default_rng(4)
    u, _ = np.linalg.qr(rng.normal(size=(40, 8)))
    v, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    s = np.array([4.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.1])
    w = (u * s @ v.T).astype("float32")
    estimate = float(ops.convert_to_numpy(spectral_norm(w, 30)))
    np.testing.assert_allclose(estimate, 4.0, rtol=1e-3)
    out = _apply(SpectralNormConstraint(1.0, power_iterations=30), w)
    np.testing.assert_allclose(_sigma(out), 1.0, rtol=1e-3)


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_spectral_norm_max_value_not_positive(value):
    with pytest.raises(ValueError, match="argument `max_value`"):
        SpectralNormConstraint(max_value=value)


@pytest.mark.parametrize("value", [0, 2.5])
def test_spectral_norm_bad_power_iterations(value):
    with pytest.raises(ValueError, match="argument `power_iterations`"):
        SpectralNormConstraint(power_iterations=value)


# CenteredUnitNorm


@pytest.mark.parametrize("axis", [0, 1, [0, 1, 2]])
def test_centered_unit_norm_values(axis):
    shape = (3, 3, 4, 5) if isinstance(axis, list) else (12, 7)
    w = _weight(shape, scale=2.0) + 1.0
    out = _apply(CenteredUnitNorm(axis), w)
    reduce = tuple(axis) if isinstance(axis, list) else axis
    centered = w - w.mean(reduce, keepdims=True)
    expected = centered / np.sqrt((centered ** 2).sum(reduce, keepdims=True))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.mean(reduce), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt((out ** 2).sum(reduce)), 1.0,
                               rtol=1e-5)


def test_centered_unit_norm_constant_column_stays_zero():
    w = _weight((8, 3))
    w[:, 1] = 0.7
    out = _apply(CenteredUnitNorm(0), w)
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_allclose(np.linalg.norm(out[:, [0, 2]], axis=0), 1.0,
                               rtol=1e-5)


@pytest.mark.parametrize("axis", ["0", 1.5, [], [0, "1"], True])
def test_centered_unit_norm_bad_axis_type(axis):
    with pytest.raises(ValueError, match="argument `axis`"):
        CenteredUnitNorm(axis=axis)


# Family, serialization, training


def test_get_and_config_round_trip():
    assert isinstance(constraints.get("spectral_norm_constraint"),
                      SpectralNormConstraint)
    assert isinstance(constraints.get("CenteredUnitNorm"), CenteredUnitNorm)
    for obj in [SpectralNormConstraint(2.0, 5), CenteredUnitNorm([0, 1])]:
        roundtrip_config(obj)
        restored = constraints.get(keras.saving.serialize_keras_object(obj))
        assert restored.get_config() == obj.get_config()
    with pytest.raises(ValueError, match="centered_unit_norm"):
        constraints.get("max_norm")


def _cnn(conv_constraint, head_constraint):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv",
                            kernel_constraint=conv_constraint)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, name="head",
                                 kernel_constraint=head_constraint)(x)
    return keras.Model(inputs, outputs)


def _check_spectral(kernel):
    assert _sigma(kernel) <= 0.5 * (1 + 1e-3)


def _check_centered(kernel):
    # Conv kernels use axis [0, 1, 2], Dense kernels axis 0: per output unit.
    flat = kernel.reshape(-1, kernel.shape[-1])
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=0), 1.0, rtol=1e-4)


CASES = {
    "spectral": (lambda: SpectralNormConstraint(0.5),
                 lambda: SpectralNormConstraint(0.5), _check_spectral),
    "centered": (lambda: CenteredUnitNorm([0, 1, 2]),
                 lambda: CenteredUnitNorm(0), _check_centered),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trains_under_fit_and_reloads(tmp_path, case):
    make_conv, make_head, check = CASES[case]
    x, y = random_batch()
    variants = [False, True] if keras.backend.backend() == "tensorflow" else [
        False]
    for jit in variants:
        model = _cnn(make_conv(), make_head())
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=jit,
                      loss=keras.losses.SparseCategoricalCrossentropy(True))
        history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        for name in ("conv", "head"):
            check(ops.convert_to_numpy(model.get_layer(name).kernel))
    before = model.predict(x, verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), before,
                               rtol=0, atol=1e-6)
    for name in ("conv", "head"):
        restored = reloaded.get_layer(name).kernel_constraint
        original = model.get_layer(name).kernel_constraint
        assert type(restored) is type(original)
        assert restored.get_config() == original.get_config()
