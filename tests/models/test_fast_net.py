"""build_fast_net: the airbench-like network of the "fast" preset."""

import keras
import numpy as np
import pytest

from keras_regkit.models import PRESETS
from keras_regkit.models import build_fast_net
from keras_regkit.layers import FusedBatchNormalization
from keras_regkit.layers import GELU
from keras_regkit.layers import PatchWhitening
from keras_regkit.layers import ScaledBias
from keras_regkit.models.fast_net import LOGIT_SCALE
from keras_regkit.models.fast_net import adapt_fast_net
from tests.helpers import conv_rounding_bound
from tests.helpers import random_batch
from tests.helpers import save_and_reload

TINY = PRESETS["fast"].replace(conv_filters=(8, 16, 16), stem_filters=4)
# Without airbench's tricks: a trained 2x2 conv stem, plain BN biases.
PLAIN = TINY.replace(stem_whitening=False, dirac_init=False,
                     bias_lr_multiplier=1.0)


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def test_fast_preset_parameter_count_and_name():
    model = build_fast_net((32, 32, 3), 10, "fast")
    assert model.name == "fast_fast"
    assert not model.compiled
    # BN: no scale; the bias is a ScaledBias; moving mean and variance.
    bn = lambda c: 3 * c  # noqa: E731
    whitening = 2 * 2 * 3 * 24 + 24 + 24 + 2  # kernel, bias, frozen, flags
    expected = (
        whitening
        + 9 * 24 * 64 + bn(64) + 9 * 64 * 64 + bn(64)
        + 9 * 64 * 256 + bn(256) + 9 * 256 * 256 + bn(256)
        + 9 * 256 * 256 + bn(256) + 9 * 256 * 256 + bn(256)
        + 256 * 10
    )
    assert model.count_params() == expected == 1_973_970
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trainable == 1_971_352  # airbench: its BN scales and stem frozen


def test_plain_stem_without_tricks():
    model = build_fast_net((32, 32, 3), 10, PLAIN)
    assert model.get_layer("stem_conv").output.shape[1:] == (31, 31, 4)
    assert not layers_of(model, PatchWhitening)
    assert not layers_of(model, ScaledBias)
    assert all(bn.center and not bn.scale
               for bn in layers_of(model, keras.layers.BatchNormalization))


def test_group_structure_and_resolutions():
    model = build_fast_net((32, 32, 3), 10, TINY)
    types = [type(l).__name__ for l in model.layers]
    assert types[1:4] == ["Normalization", "PatchWhitening", "GELU"]
    assert types[4:13] == [
        "FastConv2D", "MaxPooling2D", "FusedBatchNormalization",
        "ScaledBias", "GELU", "FastConv2D", "FusedBatchNormalization",
        "ScaledBias", "GELU",
    ]
    assert types[-4:] == ["GlobalMaxPooling2D", "Dense", "Rescaling",
                          "Activation"]
    # 2 * 2 * 2 * 3 whitening filters whatever stem_filters says.
    assert model.get_layer("stem_whitening").output.shape[1:] == (31, 31, 24)
    assert all(b.lr_multiplier == 64.0 for b in layers_of(model, ScaledBias))
    sizes = [model.get_layer(f"group{i}_2_gelu").output.shape[1]
             for i in (1, 2, 3)]
    assert sizes == [15, 7, 3]
    # Keras's batch norm and exact GELU, on TensorFlow's faster kernels.
    norms = layers_of(model, FusedBatchNormalization)
    assert len(norms) == 3 * 2 and all(
        isinstance(layer, keras.layers.BatchNormalization) for layer in norms)
    gelus = layers_of(model, GELU)
    assert len(gelus) == 1 + 3 * 2
    assert not any(layer.approximate for layer in gelus)
    assert [layer.name for layer in layers_of(
        model, keras.layers.Activation)] == ["predictions"]
    assert not model.get_layer("logits").use_bias


def test_logits_are_scaled_before_the_softmax():
    x, _ = random_batch()
    model = build_fast_net((32, 32, 3), 10, TINY)
    logits_model = keras.Model(model.input, model.get_layer("logits").output)
    logits = keras.ops.convert_to_numpy(logits_model(x[:8], training=False))
    probs = keras.ops.convert_to_numpy(model(x[:8], training=False))
    scaled = logits * LOGIT_SCALE
    expected = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert LOGIT_SCALE == pytest.approx(1 / 9)
    half = build_fast_net((32, 32, 3), 10, TINY, logit_scale=0.5)
    assert half.get_layer("logit_scale").scale == 0.5


def test_convs_per_block_adds_conv_bn_gelu():
    model = build_fast_net((32, 32, 3), 10, TINY.replace(convs_per_block=3))
    assert len(layers_of(model, keras.layers.Conv2D)) == 3 * 3
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 3


def test_disabled_features_add_no_layers_and_enabled_ones_do():
    model = build_fast_net((32, 32, 3), 10, TINY.replace(batch_norm=False))
    assert all(type(l) is not keras.layers.Layer for l in model.layers)
    assert not layers_of(model, keras.layers.BatchNormalization)
    assert not layers_of(model, keras.layers.Dropout)
    assert all(l.use_bias for l in layers_of(model, keras.layers.Conv2D))
    regular = build_fast_net(
        (32, 32, 3), 10, TINY.replace(dropout_conv=0.1, dropout_dense=0.2))
    spatial = layers_of(regular, keras.layers.SpatialDropout2D)
    assert [l.rate for l in spatial] == [0.1, 0.1, 0.1]
    assert regular.get_layer("head_dropout").rate == 0.2


def test_l2_only_in_l2_mode():
    assert build_fast_net((32, 32, 3), 10, TINY).losses == []
    model = build_fast_net((32, 32, 3), 10,
                           TINY.replace(weight_decay_mode="l2"))
    convs = layers_of(model, keras.layers.Conv2D)
    assert all(l.kernel_regularizer.l2 == pytest.approx(5e-4) for l in convs)
    assert len(model.losses) == 6  # the whitened stem is not trained
    plain = build_fast_net((32, 32, 3), 10,
                           PLAIN.replace(weight_decay_mode="l2"))
    assert len(plain.losses) == 7


def test_dirac_init_makes_identity_filters():
    model = build_fast_net((32, 32, 3), 10, TINY)
    kernel = keras.ops.convert_to_numpy(model.get_layer("group2_2_conv").kernel)
    np.testing.assert_array_equal(kernel[1, 1], np.eye(16))
    plain = build_fast_net((32, 32, 3), 10, PLAIN)
    kernel = keras.ops.convert_to_numpy(plain.get_layer("group2_2_conv").kernel)
    assert not np.allclose(kernel[1, 1], np.eye(16))
    bound = 1 / np.sqrt(9 * 16)  # PyTorch's default: U(+-1/sqrt(fan_in))
    assert np.abs(kernel).max() <= bound + 1e-7


def test_adapt_whitens_the_stem_on_real_images(cifar10_small):
    x, _ = cifar10_small
    model = build_fast_net((32, 32, 3), 10, TINY)
    layer = model.get_layer("stem_whitening")
    assert not layer.adapted
    assert adapt_fast_net(model, x, max_images=500) == 1
    assert layer.adapted
    stem = keras.Model(model.input, [layer.input, layer.output])
    seen, out = (keras.ops.convert_to_numpy(t)
                 for t in stem(x[500:900] / 255.0))
    half = out[..., :12].reshape(-1, 12)
    # Held-out images: near-zero means and near-unit variances, except in
    # the last directions, whose eigenvalues (~2e-4) epsilon (5e-4) damps.
    assert np.abs(half.mean(0)).max() < 0.15
    var = half.var(0)
    assert np.all((var[:10] > 0.5) & (var[:10] < 1.6)) and var.max() < 1.6
    # The last 12 filters and biases are exactly the negatives of the first
    # 12, but the backend may sum a channel's products in another order;
    # the halves then differ by at most the sum of their rounding bounds,
    # set by the size of the products (gains up to ~1 / sqrt(5e-4)), not
    # by the order-1 outputs.
    bound = conv_rounding_bound(np.abs(seen).max(),
                                keras.ops.convert_to_numpy(layer.kernel),
                                layer.effective_bias)
    gap = np.abs(out[..., 12:] + out[..., :12]).reshape(-1, 12).max(axis=0)
    assert np.all(gap <= bound[:12] + bound[12:]), (gap, bound)
    assert adapt_fast_net(build_fast_net((32, 32, 3), 10, PLAIN), x) == 0


def test_stem_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_fast_net((32, 32, 3), 10, TINY)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("stem_whitening").compute_dtype == "float32"
    assert model.get_layer("group1_1_conv").compute_dtype == "bfloat16"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_shape=(8, 8, 3)), r"`input_shape`.*at least 9"),
        (dict(num_classes=1), "`num_classes`"),
        (dict(logit_scale=0.0), r"`logit_scale`.*\(0, inf\)"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(input_shape=(32, 32, 3), num_classes=10, preset=TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_fast_net(**args)


def test_save_and_reload_keeps_inference_outputs(tmp_path):
    x, _ = random_batch()
    model = build_fast_net((32, 32, 3), 10, TINY)
    before = model.predict(x[:8], verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x[:8], verbose=0), before,
                               rtol=0, atol=1e-6)


def test_one_fit_step():
    x, y = random_batch()
    model = build_fast_net((32, 32, 3), 10, TINY)
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.85,
                                                 nesterov=True),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
