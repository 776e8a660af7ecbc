"""build_cnn: the reference recipe's CNN, layer by layer, and its
generalization."""

import keras
import numpy as np
import pytest

from keras_regkit.models import ARCHITECTURE_NAMES
from keras_regkit.models import ARCHITECTURES
from keras_regkit.models import PRESETS
from keras_regkit.models import build_backbone
from keras_regkit.models import build_cnn
from tests.helpers import random_batch

# The reference recipe's layer sequence, Input first.
REFERENCE_SEQUENCE = [
    "InputLayer",
    "Conv2D", "BatchNormalization", "Activation", "SpatialDropout2D",
    "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
    "SpatialDropout2D",
    "Conv2D", "BatchNormalization", "Activation", "SpatialDropout2D",
    "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
    "SpatialDropout2D",
    "Flatten",
    "Dense", "BatchNormalization", "Activation", "Dropout",
    "Dense", "BatchNormalization", "Activation", "Dropout",
    "Dense",
]
TINY = dict(conv_filters=(8, 16), dense_units=(32,))


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_medium_reproduces_the_seed_layer_sequence():
    model = build_cnn((32, 32, 3), 10, PRESETS["medium"])
    assert layer_types(model) == REFERENCE_SEQUENCE
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in convs] == [64, 64, 128, 128]
    assert all(l.kernel_size == (3, 3) and l.padding == "same" for l in convs)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in dense] == [512, 256, 10]
    assert dense[-1].activation is keras.activations.softmax
    acts = [l for l in model.layers if isinstance(l, keras.layers.Activation)]
    assert all(l.activation is keras.activations.relu for l in acts)
    rates = [l.rate for l in model.layers
             if isinstance(l, keras.layers.Dropout)]
    np.testing.assert_allclose(rates, [0.2, 0.2, 0.3, 0.3, 0.4, 0.4])


def test_medium_parameter_count():
    model = build_cnn((32, 32, 3), 10, "medium")
    bn = lambda c: 4 * c  # noqa: E731  gamma, beta, moving mean, variance
    expected = (
        3 * 3 * 3 * 64 + bn(64) + 3 * 3 * 64 * 64 + bn(64)
        + 3 * 3 * 64 * 128 + bn(128) + 3 * 3 * 128 * 128 + bn(128)
        + 8 * 8 * 128 * 512 + bn(512) + 512 * 256 + bn(256)
        + 256 * 10 + 10
    )
    assert model.count_params() == expected == 4_592_330


def test_output_name_and_uncompiled():
    x, _ = random_batch()
    model = build_cnn((32, 32, 3), 10, "small")
    assert model.name == "small_cnn"
    assert build_cnn((32, 32, 3), 10, "small", name="mine").name == "mine"
    assert not model.compiled
    probs = keras.ops.convert_to_numpy(model(x[:4], training=False))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_large_is_deeper_and_scales_the_conv_dropout_per_stage():
    model = build_cnn((32, 32, 3), 10, "large")
    rates = [l.rate for l in model.layers
             if isinstance(l, keras.layers.SpatialDropout2D)]
    np.testing.assert_allclose(rates, [0.3, 0.3, 0.45, 0.45, 0.6, 0.6])
    counts = [build_cnn((32, 32, 3), 10, n).count_params()
              for n in ("small", "medium", "large")]
    assert counts[0] < counts[1] < counts[2]


def test_decoupled_mode_attaches_no_l2():
    model = build_cnn((32, 32, 3), 10, "medium")
    assert all(getattr(l, "kernel_regularizer", None) is None
               for l in model.layers)
    assert model.losses == []


def test_l2_mode_attaches_the_seed_penalties():
    preset = PRESETS["medium"].replace(weight_decay_mode="l2")
    model = build_cnn((32, 32, 3), 10, preset)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert all(l.kernel_regularizer.l2 == pytest.approx(1e-4) for l in convs)
    assert all(l.kernel_regularizer.l2 == pytest.approx(1e-3)
               for l in dense[:-1])
    assert dense[-1].kernel_regularizer is None
    assert len(model.losses) == 6
    kernel = keras.ops.convert_to_numpy(convs[0].kernel)
    assert keras.ops.convert_to_numpy(model.losses[0]) == pytest.approx(
        1e-4 * np.sum(kernel ** 2), rel=1e-5)


def test_max_norm_on_hidden_dense_kernels_only():
    model = build_cnn((32, 32, 3), 10, "medium")
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    for layer in dense[:-1]:
        assert isinstance(layer.kernel_constraint, keras.constraints.MaxNorm)
        assert layer.kernel_constraint.max_value == 3.0
    assert dense[-1].kernel_constraint is None
    plain = build_cnn((32, 32, 3), 10, PRESETS["medium"].replace(max_norm=None))
    assert all(getattr(l, "kernel_constraint", None) is None
               for l in plain.layers)


def test_disabled_features_add_no_layers():
    preset = PRESETS["small"].replace(
        batch_norm=False, dropout_conv=0.0, dropout_dense=0.0, **TINY)
    model = build_cnn((32, 32, 3), 10, preset)
    assert layer_types(model) == [
        "InputLayer", "Conv2D", "Activation", "Conv2D", "Activation",
        "MaxPooling2D", "Conv2D", "Activation", "Conv2D", "Activation",
        "MaxPooling2D", "Flatten", "Dense", "Activation", "Dense",
    ]
    assert all(type(l) is not keras.layers.Layer for l in model.layers)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert all(l.use_bias for l in convs)
    with_bn = build_cnn((32, 32, 3), 10, PRESETS["small"].replace(**TINY))
    assert not any(getattr(l, "use_bias", False) for l in with_bn.layers
                   if isinstance(l, keras.layers.Conv2D))


def test_convs_per_block_generalizes_the_stage():
    preset = PRESETS["small"].replace(convs_per_block=3, **TINY)
    types = layer_types(build_cnn((32, 32, 3), 10, preset))
    assert types[1:14] == [
        "Conv2D", "BatchNormalization", "Activation", "SpatialDropout2D",
        "Conv2D", "BatchNormalization", "Activation", "SpatialDropout2D",
        "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
        "SpatialDropout2D",
    ]


def test_conv_dropout_must_stay_below_one_in_the_deepest_stage():
    preset = PRESETS["large"].replace(dropout_conv=0.5)
    with pytest.raises(ValueError, match=r"`dropout_conv`.*\[0, 0.5\)"):
        build_cnn((32, 32, 3), 10, preset)


@pytest.mark.parametrize(
    "input_shape, num_classes, match",
    [
        ((2, 2, 3), 10, r"`input_shape`.*at least 4"),
        ((32, 32), 10, "`input_shape`"),
        ((32, 0, 3), 10, "`input_shape`"),
        ("32x32", 10, "`input_shape`"),
        ((32, 32, 3), 1, "`num_classes`"),
    ],
)
def test_invalid_model_arguments(input_shape, num_classes, match):
    with pytest.raises(ValueError, match=match):
        build_cnn(input_shape, num_classes, "small")


def test_unknown_preset_name_is_refused():
    with pytest.raises(ValueError, match="Unknown capacity preset"):
        build_cnn((32, 32, 3), 10, "huge")


def test_one_fit_step():
    x, y = random_batch()
    model = build_cnn((32, 32, 3), 10, PRESETS["small"].replace(**TINY))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_build_backbone_dispatches_by_architecture():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    preset = PRESETS["small"].replace(**TINY)
    for architecture in ARCHITECTURE_NAMES:
        model = build_backbone((32, 32, 3), 10, preset, architecture)
        assert model.name == f"small_{architecture}"
        assert model.output_shape == (None, 10)
    # Without `architecture`, the preset's own (a narrow "fast" preset).
    fast = PRESETS["fast"].replace(conv_filters=(8, 16, 16), stem_filters=4)
    assert build_backbone((32, 32, 3), 10, fast).name == "fast_fast"
    with pytest.raises(ValueError, match="`architecture`.*'resnet'.*vit"):
        build_backbone((32, 32, 3), 10, preset, "vit")
    # Image backbones need (height, width, channels); the MLP takes any shape.
    with pytest.raises(ValueError, match="`input_shape`.*channels"):
        build_backbone((3072,), 10, preset, "cnn")
    assert build_backbone((3072,), 10, preset, "mlp").output_shape == (None, 10)
