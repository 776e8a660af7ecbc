"""build_resnet: a pre-activation CIFAR ResNet with drop-path and DropBlock."""

import keras
import numpy as np
import pytest

from keras_regkit.layers.drop_block import DropBlock2D
from keras_regkit.layers.stochastic_depth import StochasticDepth
from keras_regkit.models import PRESETS
from keras_regkit.models import build_resnet
from tests.helpers import random_batch
from tests.helpers import save_and_reload

TINY = PRESETS["small"].replace(
    conv_filters=(8, 16), stem_filters=8, resnet_blocks=1, dropout_conv=0.0,
    dropout_dense=0.0,
)


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def test_tiny_resnet_shape_name_and_parameter_count():
    x, _ = random_batch()
    model = build_resnet((32, 32, 3), 10, TINY)
    assert model.name == "small_resnet"
    assert not model.compiled
    expected = (
        3 * 3 * 3 * 8                                   # stem
        + 4 * 8 + 9 * 8 * 8 + 4 * 8 + 9 * 8 * 8         # stage 1, identity
        + 4 * 8 + 8 * 16 + 9 * 8 * 16 + 4 * 16 + 9 * 16 * 16  # stage 2
        + 4 * 16 + 16 * 10 + 10                          # head
    )
    assert model.count_params() == expected == 5346
    probs = keras.ops.convert_to_numpy(model(x[:4], training=False))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_stages_downsample_and_project_only_when_needed():
    model = build_resnet((32, 32, 3), 10, TINY.replace(resnet_blocks=2))
    assert len(layers_of(model, keras.layers.Add)) == 4
    shortcuts = [l.name for l in model.layers if "shortcut" in l.name]
    assert shortcuts == ["stage2_block1_shortcut_conv"]
    assert model.get_layer("stage1_block2_add").output.shape[1:] == (32, 32, 8)
    assert model.get_layer("stage2_block1_add").output.shape[1:] == (16, 16, 16)


def test_stochastic_depth_rises_linearly_with_depth():
    preset = TINY.replace(resnet_blocks=2, stochastic_depth_rate=0.2)
    model = build_resnet((32, 32, 3), 10, preset)
    rates = [layer.rate for layer in layers_of(model, StochasticDepth)]
    np.testing.assert_allclose(rates, [0.05, 0.1, 0.15, 0.2])


def test_dropblock_on_the_last_two_stages():
    preset = TINY.replace(conv_filters=(8, 16, 32), dropblock_rate=0.1,
                          dropblock_size=3)
    model = build_resnet((32, 32, 3), 10, preset)
    blocks = layers_of(model, DropBlock2D)
    assert [l.name for l in blocks] == ["stage2_block1_dropblock",
                                        "stage3_block1_dropblock"]
    assert all(l.rate == 0.1 and l.block_size == 3 for l in blocks)


def test_dropout_in_blocks_and_before_the_head():
    preset = TINY.replace(dropout_conv=0.1, dropout_dense=0.3)
    model = build_resnet((32, 32, 3), 10, preset)
    spatial = layers_of(model, keras.layers.SpatialDropout2D)
    assert [l.rate for l in spatial] == [0.1, 0.1]
    assert model.get_layer("head_dropout").rate == 0.3
    assert model.layers[-2].name == "head_dropout"


def test_disabled_features_add_no_layers():
    preset = TINY.replace(batch_norm=False)
    model = build_resnet((32, 32, 3), 10, preset)
    assert all(type(l) is not keras.layers.Layer for l in model.layers)
    assert not layers_of(model, keras.layers.BatchNormalization)
    assert not layers_of(model, keras.layers.Dropout)
    assert not layers_of(model, StochasticDepth)
    assert not layers_of(model, DropBlock2D)
    assert all(l.use_bias for l in layers_of(model, keras.layers.Conv2D))


def test_l2_only_in_l2_mode():
    assert build_resnet((32, 32, 3), 10, TINY).losses == []
    model = build_resnet((32, 32, 3), 10, TINY.replace(weight_decay_mode="l2"))
    convs = layers_of(model, keras.layers.Conv2D)
    assert all(l.kernel_regularizer.l2 == pytest.approx(1e-5) for l in convs)
    assert len(model.losses) == len(convs) == 6


def test_stackwise_lists_override_the_preset():
    model = build_resnet((32, 32, 3), 10, TINY, stackwise_num_filters=(4, 8, 8),
                         stackwise_num_blocks=(1, 2, 1))
    assert len(layers_of(model, keras.layers.Add)) == 4
    assert model.get_layer("stage3_block1_add").output.shape[1:] == (8, 8, 8)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stackwise_num_filters=(8, 0)), "`stackwise_num_filters`"),
        (dict(stackwise_num_filters=[]), "`stackwise_num_filters`"),
        (dict(stackwise_num_blocks=(1, 1, 1)),
         r"`stackwise_num_blocks`.*2-element"),
        (dict(input_shape=(32, 32)), r"`input_shape`.*3 positive"),
        (dict(num_classes=0), "`num_classes`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(input_shape=(32, 32, 3), num_classes=10, preset=TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_resnet(**args)


def test_save_and_reload_keeps_inference_outputs(tmp_path):
    x, _ = random_batch()
    preset = TINY.replace(stochastic_depth_rate=0.2, dropblock_rate=0.1,
                          dropout_dense=0.2)
    model = build_resnet((32, 32, 3), 10, preset)
    before = model.predict(x[:8], verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    assert reloaded.name == model.name
    assert len(layers_of(reloaded, StochasticDepth)) == 2
    np.testing.assert_allclose(reloaded.predict(x[:8], verbose=0), before,
                               rtol=0, atol=1e-6)


def test_one_fit_step():
    x, y = random_batch()
    model = build_resnet((32, 32, 3), 10,
                         TINY.replace(stochastic_depth_rate=0.1))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
