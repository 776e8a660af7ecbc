"""build_fast_net: the airbench-like network of the "fast" preset."""

import keras
import numpy as np
import pytest

from keras_regkit.models import PRESETS
from keras_regkit.models import build_fast_net
from keras_regkit.models.fast_net import LOGIT_SCALE
from tests.helpers import save_and_reload

TINY = PRESETS["fast"].replace(conv_filters=(8, 16, 16), stem_filters=4)


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def test_fast_preset_parameter_count_and_name():
    model = build_fast_net((32, 32, 3), 10, "fast")
    assert model.name == "fast_fast"
    assert not model.compiled
    bn = lambda c: 4 * c  # noqa: E731
    expected = (
        2 * 2 * 3 * 24 + 24
        + 9 * 24 * 64 + bn(64) + 9 * 64 * 64 + bn(64)
        + 9 * 64 * 256 + bn(256) + 9 * 256 * 256 + bn(256)
        + 9 * 256 * 256 + bn(256) + 9 * 256 * 256 + bn(256)
        + 256 * 10
    )
    assert model.count_params() == expected == 1_975_096


def test_group_structure_and_resolutions():
    model = build_fast_net((32, 32, 3), 10, TINY)
    types = [type(l).__name__ for l in model.layers]
    assert types[1:3] == ["Conv2D", "Activation"]
    assert types[3:10] == [
        "Conv2D", "MaxPooling2D", "BatchNormalization", "Activation",
        "Conv2D", "BatchNormalization", "Activation",
    ]
    assert types[-4:] == ["GlobalMaxPooling2D", "Dense", "Rescaling",
                          "Activation"]
    assert model.get_layer("stem_conv").output.shape[1:] == (31, 31, 4)
    sizes = [model.get_layer(f"group{i}_2_gelu").output.shape[1]
             for i in (1, 2, 3)]
    assert sizes == [15, 7, 3]
    acts = [l for l in layers_of(model, keras.layers.Activation)
            if l.name != "predictions"]
    assert all(l.activation is keras.activations.gelu for l in acts)
    assert not model.get_layer("logits").use_bias


def test_logits_are_scaled_before_the_softmax(cifar10_batch):
    x, _ = cifar10_batch
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
    assert len(layers_of(model, keras.layers.Conv2D)) == 1 + 3 * 3
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
    assert len(model.losses) == 7


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


def test_save_and_reload_keeps_inference_outputs(cifar10_batch, tmp_path):
    x, _ = cifar10_batch
    model = build_fast_net((32, 32, 3), 10, TINY)
    before = model.predict(x[:8], verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x[:8], verbose=0), before,
                               rtol=0, atol=1e-6)


def test_one_fit_step_on_cifar10(cifar10_batch):
    x, y = cifar10_batch
    model = build_fast_net((32, 32, 3), 10, TINY)
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.85,
                                                 nesterov=True),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
