"""CapacityPreset: seed values, validation, dict/YAML I/O and get_preset."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from keras_regkit.models import presets as presets_module
from keras_regkit.models.presets import PRESETS
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import get_preset
from tests.helpers import REFERENCE_REG_CONFIGS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", sorted(REFERENCE_REG_CONFIGS))
def test_reg_config_is_the_seed_table_exactly(name):
    config = PRESETS[name].reg_config
    assert config == REFERENCE_REG_CONFIGS[name]
    assert list(config) == list(REFERENCE_REG_CONFIGS[name])


def test_reg_config_is_a_fresh_dict():
    PRESETS["medium"].reg_config["l2"] = 1.0
    assert PRESETS["medium"].reg_config["l2"] == 1e-4


def test_medium_is_the_seed_cnn_and_the_defaults():
    medium = PRESETS["medium"]
    assert medium.architecture == "cnn"
    assert medium.conv_filters == (64, 128)
    assert medium.convs_per_block == 2
    assert medium.dense_units == (512, 256)
    assert medium.max_norm == 3.0
    assert (medium.epochs, medium.batch_size) == (200, 64)
    assert CapacityPreset(name="medium") == medium


def test_capacity_grows_with_the_regularization():
    small, medium, large = (PRESETS[n] for n in ("small", "medium", "large"))
    assert sum(small.conv_filters) < sum(medium.conv_filters)
    assert sum(medium.conv_filters) < sum(large.conv_filters)
    assert small.dense_units[0] < medium.dense_units[0] < large.dense_units[0]
    assert small.weight_decay < medium.weight_decay < large.weight_decay
    assert [p.augmentation for p in (small, medium, large)] == [
        "light", "standard", "strong"]
    assert small.mix_config is None and medium.mix_config is None
    assert large.mix_config == {"mixup_alpha": 0.2, "cutmix_alpha": 0.0}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_decays_once_and_decoupled(name):
    preset = PRESETS[name]
    assert preset.weight_decay_mode == "decoupled"
    assert 0 < preset.weight_decay <= 0.1
    assert preset.optimizer in ("adamw", "sgd", "sgd_muon")


def test_fast_preset_is_airbench_like():
    fast = PRESETS["fast"]
    assert fast.architecture == "fast"
    assert fast.label_smoothing == 0.2
    assert fast.augmentation == "alternating_flip_translate2"
    assert fast.stem_whitening and fast.dirac_init and fast.lookahead
    assert fast.bias_lr_multiplier == 64.0
    # airbench keeps 0.6 of the old statistics (it builds PyTorch's
    # BatchNorm with momentum 1 - 0.6), which is Keras's momentum 0.6.
    assert fast.bn_momentum == pytest.approx(0.6)
    # airbench's decoupled lr * decay per step, amplified by momentum:
    # 1.5 * 0.0089 ~ 0.0020 / (1 - 0.85)
    assert fast.learning_rate * fast.weight_decay == pytest.approx(
        0.0020 / 0.15, rel=0.01)
    # airbench94_muon's optimizer: Muon steps for the conv filters at its
    # peak rate, Nesterov SGD for the rest.
    assert (fast.optimizer, fast.nesterov) == ("sgd_muon", True)
    assert fast.muon_learning_rate == 0.24
    assert 0.8 <= fast.momentum <= 0.9
    # 8 epochs: 0.8x the training images of the former 10-epoch recipe,
    # with one epoch of warm-up before the linear decay.
    assert (fast.batch_size, fast.epochs, fast.warmup_epochs) == (1024, 8, 1)
    assert fast.dropout_dense == fast.dropout_conv == 0.0
    assert fast.lr_schedule == "onecycle"
    assert 0 < fast.warmup_epochs < fast.epochs


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_yaml_files_hold_the_presets(name):
    assert CapacityPreset.from_yaml(CONFIGS / f"{name}.yaml") == PRESETS[name]
    assert get_preset(str(CONFIGS / f"{name}.yaml")) == PRESETS[name]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_round_trip(name, tmp_path):
    preset = PRESETS[name].replace(max_norm=None, dense_units=())
    path = preset.to_yaml(tmp_path / "preset.yaml")
    assert CapacityPreset.from_yaml(path) == preset
    assert os.listdir(tmp_path) == ["preset.yaml"]


def test_to_yaml_is_atomic(tmp_path, monkeypatch):
    path = PRESETS["small"].to_yaml(tmp_path / "preset.yaml")
    before = path.read_text()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(presets_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        PRESETS["large"].to_yaml(path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["preset.yaml"]


def test_from_yaml_refuses_python_tags(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(
        f'name: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(ValueError, match="Could not parse"):
        CapacityPreset.from_yaml(path)
    assert not marker.exists()


def test_from_yaml_needs_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        CapacityPreset.from_yaml(path)


def test_from_yaml_names_the_preset_after_the_file(tmp_path):
    path = tmp_path / "tiny.yml"
    path.write_text("conv_filters: [8, 16]\ndense_units: []\n")
    preset = get_preset(path)
    assert preset.name == "tiny"
    assert preset.conv_filters == (8, 16) and preset.dense_units == ()


def test_missing_yaml_file_is_named(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        get_preset(path)


def test_to_dict_is_plain_and_round_trips():
    preset = PRESETS["large"]
    config = preset.to_dict()
    assert config["conv_filters"] == [64, 128, 256]
    json.dumps(config)
    assert list(config) == list(CapacityPreset.field_names())
    assert CapacityPreset.from_dict(config) == preset


def test_from_dict_rejects_unknown_keys_listing_the_valid_ones():
    with pytest.raises(ValueError, match="dropout_rate.*Valid keys: name, "
                                         "architecture, conv_filters"):
        CapacityPreset.from_dict({"name": "x", "dropout_rate": 0.5})


def test_from_dict_needs_a_name():
    with pytest.raises(ValueError, match="`name`"):
        CapacityPreset.from_dict({"l2": 0.1})


def test_from_dict_needs_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        CapacityPreset.from_dict([("name", "x")])


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("name", "", "non-empty string"),
        ("name", "a/b", "non-empty string"),
        ("architecture", "vit", "one of 'cnn', 'mlp', 'resnet', 'fast'"),
        ("conv_filters", (), "non-empty tuple of positive integers"),
        ("conv_filters", "64", "non-empty tuple of positive integers"),
        ("conv_filters", (64, 0), "non-empty tuple of positive integers"),
        ("conv_filters", (64.0,), "non-empty tuple of positive integers"),
        ("convs_per_block", 0, r"integer in \[1, inf\]"),
        ("dense_units", (True,), "a tuple of positive integers"),
        ("stem_filters", 0, r"integer in \[1, inf\]"),
        ("resnet_blocks", 2.0, r"integer in \[1, inf\]"),
        ("stem_whitening", "yes", "a bool"),
        ("dirac_init", 1, "a bool"),
        ("bias_lr_multiplier", 0.0, r"float in \(0, inf\)"),
        ("lookahead", None, "a bool"),
        ("l2", -1e-4, r"float in \[0, inf\)"),
        ("l2", "1e-5", r"float in \[0, inf\)"),
        ("weight_decay", float("nan"), r"float in \[0, inf\)"),
        ("weight_decay_mode", "both", "one of 'decoupled', 'l2'"),
        ("dropout_dense", 1.0, r"float in \[0, 1\)"),
        ("dropout_conv", -0.1, r"float in \[0, 1\)"),
        ("batch_norm", "yes", "a bool"),
        ("batch_norm", 1, "a bool"),
        ("bn_momentum", 1.0, r"\(0, 1\)"),
        ("bn_momentum", 0.0, r"\(0, 1\)"),
        ("max_norm", 0.0, r"float in \(0, inf\)"),
        ("stochastic_depth_rate", 1.5, r"float in \[0, 1\)"),
        ("dropblock_rate", 1.0, r"float in \[0, 1\)"),
        ("dropblock_size", 0, r"integer in \[1, inf\]"),
        ("label_smoothing", 1.0, r"float in \[0, 1\)"),
        ("early_stopping_patience", -1, r"integer in \[0, inf\]"),
        ("augmentation", "heavy", "'flip_translate', 'light', 'standard'"),
        ("mixup_alpha", -0.2, r"float in \[0, inf\)"),
        ("cutmix_alpha", True, r"float in \[0, inf\)"),
        ("optimizer", "adam", "one of 'adamw', 'sgd'"),
        ("learning_rate", 0.0, r"float in \(0, inf\)"),
        ("momentum", 1.0, r"float in \[0, 1\)"),
        ("nesterov", None, "a bool"),
        ("muon_learning_rate", 0.0, r"float in \(0, inf\)"),
        ("lr_schedule", "step", "'warmup_cosine', 'warmup_linear'"),
        ("warmup_epochs", -1, r"integer in \[0, inf\]"),
        ("min_learning_rate", -1e-7, r"float in \[0, inf\)"),
        ("min_learning_rate", 0.5, r"float in \[0, learning_rate=0.001\]"),
        ("epochs", 200.0, r"integer in \[1, inf\]"),
        ("batch_size", 0, r"integer in \[1, inf\]"),
    ],
)
def test_invalid_field_values_are_rejected(field, value, expected):
    match = (f"argument `{field}`. Expected (an? )?.*{expected}"
             f".*Received: {field}=")
    with pytest.raises(ValueError, match=match):
        PRESETS["medium"].replace(**{field: value})
    with pytest.raises(ValueError, match=f"`{field}`"):
        CapacityPreset.from_dict(dict(PRESETS["medium"].to_dict(),
                                      **{field: value}))


def test_every_field_has_a_validation_case():
    cases = test_invalid_field_values_are_rejected.pytestmark[0].args[1]
    assert {case[0] for case in cases} == set(CapacityPreset.field_names())


def test_choice_lists_are_the_ones_the_owning_modules_use():
    # Each list of allowed values is defined once, in keras_regkit._choices.
    from keras_regkit import _choices, schedules
    from keras_regkit.data import augmentation
    from keras_regkit.models import ARCHITECTURES

    assert presets_module.AUGMENTATIONS is _choices.AUGMENTATION_POLICIES
    assert augmentation.AUGMENTATION_POLICIES is _choices.AUGMENTATION_POLICIES
    assert presets_module.LR_SCHEDULES is schedules.LR_SCHEDULES
    # The maps keyed by name list exactly the names offered.
    assert tuple(PRESETS) == _choices.PRESET_NAMES
    assert tuple(ARCHITECTURES) == _choices.ARCHITECTURE_NAMES


@pytest.mark.parametrize("schedule", presets_module.LR_SCHEDULES)
def test_every_schedule_name_builds(schedule):
    from keras_regkit.schedules import make_learning_rate

    lr = make_learning_rate(schedule, 1e-3, steps_per_epoch=10, epochs=4,
                            warmup_epochs=1)
    # A float for the constant schedules, a schedule object for the others.
    value = lr if isinstance(lr, float) else float(lr(5))
    assert 0.0 < value <= 1e-3 * (1 + 1e-6)


def test_replace_validates_and_keeps_the_original():
    medium = PRESETS["medium"]
    wider = medium.replace(conv_filters=[96, 192], l2=0)
    assert wider.conv_filters == (96, 192)
    assert wider.l2 == 0.0 and isinstance(wider.l2, float)
    assert medium.conv_filters == (64, 128)


def test_replace_rejects_unknown_keys_listing_the_valid_ones():
    with pytest.raises(ValueError, match="filters.*Valid keys: .*conv_filters"):
        PRESETS["medium"].replace(filters=(8,))


def test_presets_are_frozen_hashable_and_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["small"].l2 = 0.1
    assert len({PRESETS["small"], PRESETS["small"].replace()}) == 1
    with pytest.raises(TypeError):
        PRESETS["huge"] = PRESETS["large"]


def test_get_preset_by_name_instance_and_mapping():
    assert get_preset("small") is PRESETS["small"]
    custom = PRESETS["small"].replace(name="custom")
    assert get_preset(custom) is custom
    assert get_preset({"name": "m"}) == PRESETS["medium"].replace(name="m")
    tuned = get_preset("large", dropout_dense=0.3, epochs=2)
    assert (tuned.name, tuned.dropout_dense, tuned.epochs) == ("large", 0.3, 2)
    assert tuned.l2 == 1e-3


@pytest.mark.parametrize("identifier", ["huge", "Medium", "configs/x.json", 3,
                                        None])
def test_get_preset_refuses_unknown_identifiers_listing_names(identifier):
    match = "Unknown capacity preset.*'small', 'medium', 'large', 'fast'"
    with pytest.raises(ValueError, match=match):
        get_preset(identifier)


def test_get_preset_overrides_are_validated():
    with pytest.raises(ValueError, match="dropout_dense"):
        get_preset("small", dropout_dense=2.0)
    with pytest.raises(ValueError, match="Valid keys"):
        get_preset("small", dropout=0.1)
