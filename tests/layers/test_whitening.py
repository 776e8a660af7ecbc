"""Tests for PatchWhitening and patch_whitening_kernel.

Whitening real images (strongly correlated neighbouring pixels) is tested
on the real CIFAR-10 data; the mechanics (chunking, saving, mixed
precision, the bias switch, argument checks) on synthetic images.
"""

import numpy as np
import pytest

import keras

from keras_regkit.layers import PatchWhitening, patch_whitening_kernel
from tests.helpers import check_layer
from tests.helpers import conv_rounding_bound
from tests.helpers import random_images
from tests.helpers import roundtrip_config
from tests.helpers import save_and_reload


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def real_images(cifar10_small):
    """200 real CIFAR-10 images in [0, 1], float32 (184,832 2x2 patches)."""
    return cifar10_small[0][:200].astype("float32") / 255.0


@pytest.fixture(scope="module")
def images():
    """200 synthetic images of uniform noise in [0, 1), float32."""
    return random_images(200)


def _patch_stats(x, p):
    """Mean and covariance of the p x p patches, by explicit offsets."""
    n, h, w, c = x.shape
    cols = [x[:, i:h - p + 1 + i, j:w - p + 1 + j, :]
            for i in range(p) for j in range(p)]
    patches = np.concatenate(cols, axis=-1).reshape(-1, p * p * c)
    patches = patches.astype(np.float64)
    return patches.mean(0), np.cov(patches.T, bias=True)


def test_check_layer(tmp_path):
    check_layer(
        PatchWhitening, dict(patch_size=2), (4, 8, 8, 3), tmp_path,
        expected_output_shape=(4, 7, 7, 24),
        expected_num_trainable_weights=1,  # bias
        expected_num_non_trainable_weights=4,  # kernel, frozen bias, flags
        expected_num_seed_generators=0,
    )


@pytest.mark.parametrize("epsilon", [0.0, 5e-4])
def test_adapted_layer_whitens_real_images(real_images, epsilon):
    images = real_images
    layer = PatchWhitening(patch_size=2, epsilon=epsilon)
    assert not layer.adapted
    layer.adapt(images)
    assert layer.adapted
    out = _np(layer(images)).astype(np.float64)
    d = 12
    first = out[..., :d].reshape(-1, d)
    # The last d filters and biases are exactly the negatives of the first
    # d, but the backend may sum a channel's 12 products in another order.
    # The products reach 1 / sqrt(smallest eigenvalue) ~ 70 while the
    # outputs are of order 1, so the halves may differ by the rounding of
    # the terms' size: at most the sum of the two channels' error bounds.
    bound = conv_rounding_bound(np.abs(images).max(), _np(layer.kernel),
                                layer.effective_bias)
    gap = np.abs(out[..., d:] + out[..., :d]).reshape(-1, d).max(axis=0)
    assert np.all(gap <= bound[:d] + bound[d:]), (gap, bound)
    _, cov = _patch_stats(images, 2)
    eigenvalues = np.sort(np.linalg.eigvalsh(cov))[::-1]
    # Zero mean, and covariance diag(l / (l + epsilon)): the identity when
    # epsilon = 0, shrunk on the low-variance directions otherwise (float32
    # convolution, 184,832 patches: 2e-3 is well above the rounding).
    np.testing.assert_allclose(first.mean(0), 0.0, atol=2e-3)
    expected = np.diag(eigenvalues / (eigenvalues + epsilon))
    np.testing.assert_allclose(np.cov(first.T, bias=True), expected,
                               atol=2e-3)
    if epsilon:
        assert expected[-1, -1] < 0.9  # the test tells epsilon apart


@pytest.mark.parametrize("p", [1, 3])
def test_kernel_whitens_other_patch_sizes(real_images, p):
    x = real_images[:40]
    kernel, bias = patch_whitening_kernel(x, patch_size=p, epsilon=0.0)
    d = p * p * 3
    assert kernel.shape == (p, p, 3, 2 * d) and bias.shape == (2 * d,)
    out = _np(keras.ops.conv(x, kernel, padding="valid")) + bias
    first = out[..., :d].reshape(-1, d).astype(np.float64)
    np.testing.assert_allclose(first.mean(0), 0.0, atol=2e-3)
    np.testing.assert_allclose(np.cov(first.T, bias=True), np.eye(d),
                               atol=5e-3)


def test_chunked_statistics_match_and_adapt_takes_batches(images):
    x = images[:60]
    whole = patch_whitening_kernel(x)
    chunked = patch_whitening_kernel(x, batch_size=7)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    layer = PatchWhitening()
    layer.adapt([(x[:25], None), (x[25:], None)])
    np.testing.assert_allclose(_np(layer.kernel), whole[0], atol=1e-4)
    np.testing.assert_allclose(_np(layer.bias), whole[1], atol=1e-4)


def test_adapted_layer_save_and_reload(images, tmp_path):
    inputs = keras.Input((32, 32, 3))
    stem = PatchWhitening(name="stem")
    model = keras.Model(inputs, stem(inputs))
    stem.adapt(images[:50])
    before = model.predict(images[:8], verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    assert reloaded.get_layer("stem").adapted
    np.testing.assert_array_equal(reloaded.predict(images[:8], verbose=0),
                                  before)
    clone = roundtrip_config(stem)
    assert (clone.patch_size, clone.epsilon) == (2, 5e-4)


def test_mixed_bfloat16_policy(images):
    x = images[:4]
    reference = PatchWhitening()
    reference.adapt(images[:50])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = PatchWhitening()
        layer.adapt(images[:50])
        out = layer(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert layer.kernel.dtype == "float32"
    expected = _np(reference(x))
    got = _np(keras.ops.cast(out, "float32"))
    # bfloat16 keeps 8 significant bits: errors of a few percent of the
    # unit-variance outputs.
    assert np.abs(got - expected).max() < 0.15 * np.abs(expected).max()


def _tiny_model(optimizer, x):
    inputs = keras.Input((8, 8, 3))
    stem = PatchWhitening(name="stem")
    stem.adapt(x)
    x = keras.layers.GlobalAveragePooling2D()(stem(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
    model.compile(optimizer=optimizer, loss="mse")
    return model, stem


def test_bias_training_switch_without_recompiling(images):
    x, y = images[:16, :8, :8], np.ones((16, 1), "float32")
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.1)
    model, stem = _tiny_model(optimizer, x)
    kernel = _np(stem.kernel)
    bias = _np(stem.bias)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    trained = stem.effective_bias
    assert np.abs(trained - bias).max() > 1e-4
    stem.set_bias_trainable(False)
    assert not stem.bias_trainable_now
    head = _np(model.get_layer("head").kernel)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    # Momentum and weight decay keep moving the variable, not the bias used.
    np.testing.assert_array_equal(stem.effective_bias, trained)
    conv = _np(keras.ops.conv(x, kernel, padding="valid"))
    # Two float32 evaluations of the same sums: each within its bound.
    bound = conv_rounding_bound(np.abs(x).max(), kernel, trained)
    assert np.all(np.abs(_np(stem(x)) - (conv + trained)) <= 2 * bound)
    assert np.abs(_np(model.get_layer("head").kernel) - head).max() > 1e-5
    stem.set_bias_trainable(True)
    np.testing.assert_array_equal(_np(stem.bias), trained)  # continuous
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.abs(stem.effective_bias - trained).max() > 1e-4
    np.testing.assert_array_equal(_np(stem.kernel), kernel)


@pytest.mark.parametrize("patch_size", [0, 1.5])
def test_rejects_bad_patch_size(patch_size):
    with pytest.raises(ValueError, match="argument `patch_size`"):
        PatchWhitening(patch_size=patch_size)
    with pytest.raises(ValueError, match="argument `patch_size`"):
        patch_whitening_kernel(np.ones((1, 4, 4, 1)), patch_size=patch_size)


def test_rejects_negative_epsilon():
    with pytest.raises(ValueError, match="argument `epsilon`"):
        PatchWhitening(epsilon=-1e-3)
    with pytest.raises(ValueError, match="argument `epsilon`"):
        patch_whitening_kernel(np.ones((1, 4, 4, 1)), epsilon=-1e-3)


@pytest.mark.parametrize("shape", [(4, 4, 3), (2, 1, 5, 3), (0, 4, 4, 3)])
def test_rejects_bad_images(shape):
    with pytest.raises(ValueError, match="argument `images`"):
        patch_whitening_kernel(np.zeros(shape), patch_size=2)


def test_rejects_bad_batch_size(images):
    with pytest.raises(ValueError, match="argument `batch_size`"):
        patch_whitening_kernel(images[:2], batch_size=0)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        PatchWhitening().adapt(images[:2], batch_size=0)


def test_singular_covariance_needs_epsilon():
    with pytest.raises(ValueError, match="singular"):
        patch_whitening_kernel(np.ones((2, 4, 4, 3)), epsilon=0.0)
    kernel, _ = patch_whitening_kernel(np.ones((2, 4, 4, 3)), epsilon=1e-3)
    assert np.all(np.isfinite(kernel))


def test_rejects_bad_input_shapes(images):
    with pytest.raises(ValueError, match="at least 3x3"):
        PatchWhitening(patch_size=3)(np.zeros((1, 2, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, H, W, C\)"):
        PatchWhitening()(np.zeros((1, 8, 3), "float32"))
    layer = PatchWhitening()
    layer(images[:1])
    with pytest.raises(ValueError, match="built for 3 input channels"):
        layer.adapt(images[:4, ..., :1])


def test_set_bias_trainable_checks():
    with pytest.raises(ValueError, match="needs a built layer"):
        PatchWhitening().set_bias_trainable(False)
    layer = PatchWhitening()
    layer(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match="argument `flag`"):
        layer.set_bias_trainable(0)
