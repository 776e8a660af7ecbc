"""keras_regkit models: capacity presets and functional backbones."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Protocol

import keras

from keras_regkit._validation import check_choice
from keras_regkit._validation import invalid
from keras_regkit.models.cnn import build_cnn
from keras_regkit.models.fast_net import build_fast_net
from keras_regkit.models.mlp import build_mlp
from keras_regkit.models.presets import ARCHITECTURE_NAMES
from keras_regkit.models.presets import AUGMENTATIONS
from keras_regkit.models.presets import LR_SCHEDULES
from keras_regkit.models.presets import OPTIMIZERS
from keras_regkit.models.presets import PRESETS
from keras_regkit.models.presets import REG_CONFIG_KEYS
from keras_regkit.models.presets import WEIGHT_DECAY_MODES
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import PresetLike
from keras_regkit.models.presets import get_preset
from keras_regkit.models.resnet import build_resnet

class _BackboneBuilder(Protocol):
    """The signature every backbone builder shares."""

    def __call__(self, input_shape: Sequence[int], num_classes: int,
                 preset: PresetLike = ...,
                 name: str | None = None) -> keras.Model: ...


# Backbone builders by architecture name: fn(input_shape, num_classes, preset,
# name=None) -> uncompiled keras.Model.
ARCHITECTURES: MappingProxyType[str, _BackboneBuilder] = MappingProxyType({
    "cnn": build_cnn,
    "mlp": build_mlp,
    "resnet": build_resnet,
    "fast": build_fast_net,
})


def build_backbone(input_shape: Sequence[int], num_classes: int,
                   preset: PresetLike = "medium",
                   architecture: str | None = None,
                   name: str | None = None) -> keras.Model:
    """Builds the backbone `architecture` (or the preset's own) for a preset.

    Args:
        input_shape: shape of one example, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name, a mapping or a YAML path.
            Defaults to `"medium"`.
        architecture: `"cnn"`, `"mlp"`, `"resnet"` or `"fast"`. Defaults to
            `preset.architecture`.
        name: model name. Defaults to `f"{preset.name}_{architecture}"`.

    Returns:
        An uncompiled functional `keras.Model` with a softmax output.

    Example:

    >>> build_backbone((32, 32, 3), 10, "small", "mlp").name
    'small_mlp'
    """
    preset = get_preset(preset)
    architecture = architecture or preset.architecture
    check_choice("architecture", architecture, ARCHITECTURE_NAMES)
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if architecture != "mlp" and len(shape) != 3:
        raise invalid("input_shape", input_shape,
                      f"(height, width, channels) for architecture="
                      f"{architecture!r}")
    build = ARCHITECTURES[architecture]
    return build(input_shape, num_classes, preset, name=name)


__all__ = [
    "ARCHITECTURE_NAMES", "ARCHITECTURES", "AUGMENTATIONS", "LR_SCHEDULES",
    "OPTIMIZERS", "PRESETS", "REG_CONFIG_KEYS", "WEIGHT_DECAY_MODES",
    "CapacityPreset", "build_backbone", "build_cnn", "build_fast_net",
    "build_mlp", "build_resnet", "get_preset",
]
