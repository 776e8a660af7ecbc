"""Capacity presets: model size together with the regularization it needs.

A preset is plain data (a frozen dataclass). The YAML files in `configs/`
map one to one onto it; unknown keys and out-of-range values are rejected
with a message that lists what is allowed.
"""

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import yaml

from keras_regkit._atomic import atomic_write_text
from keras_regkit._choices import ARCHITECTURE_NAMES
from keras_regkit._choices import AUGMENTATION_POLICIES as AUGMENTATIONS
from keras_regkit._choices import LR_SCHEDULES
from keras_regkit._choices import OPTIMIZERS
from keras_regkit._choices import WEIGHT_DECAY_MODES
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_float
from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import check_positive
from keras_regkit._validation import check_rate
from keras_regkit._validation import invalid

REG_CONFIG_KEYS = (
    "l2", "dropout_dense", "dropout_conv", "batch_norm",
    "early_stopping_patience", "label_smoothing",
)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_name(name: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.match(value):
        raise invalid(name, value, "a non-empty string of letters, digits, "
                      "'_', '.' or '-'")
    return value


def _check_units(name: str, value: object,
                 allow_empty: bool) -> tuple[int, ...]:
    size = "a" if allow_empty else "a non-empty"
    expected = f"{size} tuple of positive integers"
    if not isinstance(value, (tuple, list)) or (not value and not allow_empty):
        raise invalid(name, value, expected)
    for unit in value:
        if isinstance(unit, bool) or not isinstance(unit, int) or unit < 1:
            raise invalid(name, value, expected)
    return tuple(int(unit) for unit in value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, value, "a bool (True or False)")
    return value


def _check_max_norm(name: str, value: float | None) -> float | None:
    return None if value is None else check_positive(name, value)


# Each field's check: `check(name, value)` returns the value to store.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "name": _check_name,
    "architecture": lambda n, v: check_choice(n, v, ARCHITECTURE_NAMES),
    "conv_filters": lambda n, v: _check_units(n, v, allow_empty=False),
    "convs_per_block": lambda n, v: check_int(n, v, 1, None),
    "dense_units": lambda n, v: _check_units(n, v, allow_empty=True),
    "stem_filters": lambda n, v: check_int(n, v, 1, None),
    "resnet_blocks": lambda n, v: check_int(n, v, 1, None),
    "stem_whitening": _check_bool,
    "dirac_init": _check_bool,
    "l2": check_non_negative,
    "weight_decay": check_non_negative,
    "weight_decay_mode": lambda n, v: check_choice(n, v, WEIGHT_DECAY_MODES),
    "dropout_dense": check_rate,
    "dropout_conv": check_rate,
    "batch_norm": _check_bool,
    "bn_momentum": lambda n, v: check_float(n, v, 0.0, 1.0,
                                            low_inclusive=False),
    "bias_lr_multiplier": check_positive,
    "max_norm": _check_max_norm,
    "stochastic_depth_rate": check_rate,
    "dropblock_rate": check_rate,
    "dropblock_size": lambda n, v: check_int(n, v, 1, None),
    "label_smoothing": check_rate,
    "early_stopping_patience": lambda n, v: check_int(n, v, 0, None),
    "augmentation": lambda n, v: check_choice(n, v, AUGMENTATIONS),
    "mixup_alpha": check_non_negative,
    "cutmix_alpha": check_non_negative,
    "optimizer": lambda n, v: check_choice(n, v, OPTIMIZERS),
    "learning_rate": check_positive,
    "momentum": check_rate,
    "nesterov": _check_bool,
    "muon_learning_rate": check_positive,
    "lookahead": _check_bool,
    "lr_schedule": lambda n, v: check_choice(n, v, LR_SCHEDULES),
    "warmup_epochs": lambda n, v: check_int(n, v, 0, None),
    "min_learning_rate": check_non_negative,
    "epochs": lambda n, v: check_int(n, v, 1, None),
    "batch_size": lambda n, v: check_int(n, v, 1, None),
}


@dataclasses.dataclass(frozen=True)
class CapacityPreset:
    """Model width and depth together with the regularization they need.

    Every field but `name` defaults to the `"medium"` preset (the reference recipe's
    CNN). Lists become tuples; ints are accepted for float fields. The
    fields are documented one by one in `configs/medium.yaml`.

    Weight decay: `l2` (the reference recipe's value) goes into kernel regularizers
    (convs `l2`, hidden Dense `10 * l2`) only when `weight_decay_mode` is
    `"l2"`; with `"decoupled"` (the default) the optimizer applies
    `weight_decay` (`w -= learning_rate * weight_decay * w` each step)
    and no kernel carries L2, so the penalty is never applied twice. Under
    Adam a coupled L2 gradient is rescaled per weight, so the reference recipe's values
    have no exact decoupled equivalent: the presets use AdamW-scale
    coefficients (Loshchilov and Hutter 2019) that rise with capacity like
    the reference recipe's: small 0.01, medium 0.05, large 0.1.

    `lr_schedule`: `"constant"`; `"plateau"` (the reference recipe's ReduceLROnPlateau:
    factor 0.5, patience `early_stopping_patience // 3`, floor
    `min_learning_rate`); `"cosine"` (to `min_learning_rate` over
    `epochs`); `"warmup_cosine"` (linear warm-up over `warmup_epochs`, then
    cosine); `"onecycle"` or its alias `"warmup_linear"` (linear warm-up,
    then linear decay: airbench's triangle). Schedules without warm-up
    ignore `warmup_epochs`; the builder clamps it to the run's length.

    airbench's tricks (used by `"fast"`; see `build_fast_net`):
    `stem_whitening`, `dirac_init`, `bias_lr_multiplier` (learning-rate
    multiplier of the batch-norm biases) and `lookahead` (the builder adds
    the `Lookahead` callback and ends on its averaged weights).

    `optimizer="sgd_muon"` (airbench94_muon's optimizer): the convolution
    filters take Muon steps with peak rate `muon_learning_rate` (0.24, as
    airbench94_muon at batch 2000), following the same schedule as
    `learning_rate`, which the other variables keep. The other optimizers
    ignore `muon_learning_rate`.

    Example:

    >>> preset = get_preset("medium", dropout_dense=0.3)
    >>> preset.reg_config["dropout_dense"]
    0.3
    """

    name: str
    architecture: str = "cnn"
    conv_filters: tuple[int, ...] = (64, 128)
    convs_per_block: int = 2
    dense_units: tuple[int, ...] = (512, 256)
    stem_filters: int = 64
    resnet_blocks: int = 2
    stem_whitening: bool = False
    dirac_init: bool = False
    l2: float = 1e-4
    weight_decay: float = 0.05
    weight_decay_mode: str = "decoupled"
    dropout_dense: float = 0.4
    dropout_conv: float = 0.2
    batch_norm: bool = True
    bn_momentum: float = 0.9
    bias_lr_multiplier: float = 1.0
    max_norm: float | None = 3.0
    stochastic_depth_rate: float = 0.0
    dropblock_rate: float = 0.0
    dropblock_size: int = 3
    label_smoothing: float = 0.05
    early_stopping_patience: int = 15
    augmentation: str = "standard"
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    muon_learning_rate: float = 0.24
    lookahead: bool = False
    lr_schedule: str = "plateau"
    warmup_epochs: int = 0
    min_learning_rate: float = 1e-7
    epochs: int = 200
    batch_size: int = 64

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _CHECKS[field.name](field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)
        if self.min_learning_rate > self.learning_rate:
            raise invalid(
                "min_learning_rate", self.min_learning_rate,
                f"a float in [0, learning_rate={self.learning_rate:g}]",
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Returns the names of all fields, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @property
    def reg_config(self) -> dict[str, Any]:
        """The reference recipe's `reg_config` mapping (a fresh dict, six keys)."""
        return {key: getattr(self, key) for key in REG_CONFIG_KEYS}

    @property
    def mix_config(self) -> dict[str, float] | None:
        """`{"mixup_alpha": a, "cutmix_alpha": b}`, or None when both are 0."""
        if self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            return None
        return {"mixup_alpha": self.mixup_alpha,
                "cutmix_alpha": self.cutmix_alpha}

    def replace(self, **overrides: Any) -> "CapacityPreset":
        """Returns a validated copy with `overrides` applied."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as plain Python values (tuples as lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "CapacityPreset":
        """Builds a preset from a mapping; missing fields take defaults."""
        if not isinstance(config, Mapping):
            raise ValueError(
                f"A capacity preset must be a mapping. Received: {config!r}"
            )
        _check_keys(config)
        if "name" not in config:
            raise ValueError("A capacity preset needs a `name` key.")
        return cls(**config)

    @classmethod
    def from_yaml(cls, path: os.PathLike[str] | str) -> "CapacityPreset":
        """Loads a preset from a YAML file (safe loader only).

        Without a `name` key the file's stem is used. Floats in exponent
        form need a dot in YAML 1.1 (`1.0e-4`, not `1e-4`).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Capacity preset file not found: {path}")
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ValueError(f"Could not parse {path}: {error}") from error
        if isinstance(config, Mapping) and "name" not in config:
            config = dict(config, name=path.stem)
        return cls.from_dict(config)

    def to_yaml(self, path: os.PathLike[str] | str) -> Path:
        """Writes the preset to `path` atomically (temp file, then rename)."""
        path = Path(path)
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


# What `get_preset` (and every function taking a `preset`) accepts: a
# `CapacityPreset`, a preset name, a mapping of fields or a YAML path.
PresetLike: TypeAlias = (
    CapacityPreset | str | os.PathLike[str] | Mapping[str, Any])


def _check_keys(config: Iterable[object]) -> None:
    valid = CapacityPreset.field_names()
    unknown = sorted(str(key) for key in config if key not in valid)
    if unknown:
        raise ValueError(
            f"Unknown capacity preset key(s): {', '.join(unknown)}. "
            f"Valid keys: {', '.join(valid)}."
        )


# small and medium keep the reference recipe's plateau schedule; large
# (wider and deeper, under MixUp, strong augmentation and heavy dropout,
# whose noisy validation loss makes plateau cuts erratic) warms up, then
# follows a cosine; fast is airbench94_muon-like: batch 1024, 8 epochs, Muon
# steps for the conv filters and Nesterov SGD for the rest, one cycle with a
# one-epoch warm-up, label smoothing 0.2 and augmentation instead of dropout.
# (Until 0.8x the compute matched it, it trained 10 epochs with SGD alone and
# a two-epoch warm-up: bench/README.md has the runs behind the change.)
PRESETS = MappingProxyType({
    "small": CapacityPreset(
        name="small", conv_filters=(32, 64), dense_units=(256, 128),
        stem_filters=32, l2=1e-5, weight_decay=0.01, dropout_dense=0.2,
        dropout_conv=0.1, label_smoothing=0.0, early_stopping_patience=20,
        augmentation="light",
    ),
    "medium": CapacityPreset(
        name="medium", conv_filters=(64, 128), dense_units=(512, 256),
        stem_filters=64, l2=1e-4, weight_decay=0.05, dropout_dense=0.4,
        dropout_conv=0.2, label_smoothing=0.05, early_stopping_patience=15,
        augmentation="standard",
    ),
    "large": CapacityPreset(
        name="large", conv_filters=(64, 128, 256), dense_units=(1024, 512),
        stem_filters=64, l2=1e-3, weight_decay=0.1, dropout_dense=0.5,
        dropout_conv=0.3, stochastic_depth_rate=0.1, label_smoothing=0.1,
        early_stopping_patience=10, augmentation="strong", mixup_alpha=0.2,
        lr_schedule="warmup_cosine", warmup_epochs=5,
    ),
    "fast": CapacityPreset(
        name="fast", architecture="fast", conv_filters=(64, 256, 256),
        dense_units=(), stem_filters=24, stem_whitening=True, dirac_init=True,
        l2=5e-4, weight_decay=0.0089, dropout_dense=0.0, dropout_conv=0.0,
        bn_momentum=0.6, bias_lr_multiplier=64.0, max_norm=None,
        label_smoothing=0.2, early_stopping_patience=10,
        augmentation="alternating_flip_translate2", optimizer="sgd_muon",
        learning_rate=1.5, momentum=0.85, nesterov=True,
        muon_learning_rate=0.24, lookahead=True, lr_schedule="onecycle",
        warmup_epochs=1, min_learning_rate=0.105, epochs=8, batch_size=1024,
    ),
})


def get_preset(identifier: PresetLike, **overrides: Any) -> CapacityPreset:
    """Returns a `CapacityPreset` from a name, preset, mapping or YAML path.

    Args:
        identifier: `"small"`, `"medium"`, `"large"` or `"fast"`; a
            `CapacityPreset`; a mapping of fields; or a path (str or
            `Path`) to a `.yaml`/`.yml` file.
        **overrides: fields to replace (validated).

    Returns:
        The preset, with `overrides` applied.

    Raises:
        ValueError: for an unknown name, key or invalid value.
        FileNotFoundError: for a YAML path that does not exist.
    """
    if isinstance(identifier, CapacityPreset):
        preset = identifier
    elif isinstance(identifier, Mapping):
        preset = CapacityPreset.from_dict(identifier)
    elif isinstance(identifier, str) and identifier in PRESETS:
        preset = PRESETS[identifier]
    elif isinstance(identifier, (str, os.PathLike)) and str(
        identifier
    ).lower().endswith((".yaml", ".yml")):
        preset = CapacityPreset.from_yaml(identifier)
    else:
        names = ", ".join(repr(name) for name in PRESETS)
        raise ValueError(
            f"Unknown capacity preset: {identifier!r}. Expected one of "
            f"{names}, a CapacityPreset, a mapping, or a path to a "
            ".yaml/.yml file."
        )
    return preset.replace(**overrides) if overrides else preset
