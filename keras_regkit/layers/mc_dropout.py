"""Monte Carlo dropout: active at inference, leaving other layers alone."""

from __future__ import annotations

import collections.abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_rate, check_seed, invalid

# Offset between the training seed and the Monte Carlo seed, so that a seeded
# layer's first training mask and first MC mask are not the same draw.
_MC_SEED_OFFSET = 7919

if TYPE_CHECKING:  # the mixin is only ever mixed into a Keras Dropout layer
    from keras.layers import Dropout as _LayerBase
else:
    _LayerBase = object


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, value, "a bool (True or False)")
    return value


class _MCMixin(_LayerBase):
    """Shared Monte Carlo state for `MCDropout` and `MCSpatialDropout2D`.

    The on/off switch is a non-trainable boolean variable, read inside the
    compiled predict/evaluate functions, so flipping it takes effect on an
    already-compiled model without retracing. Monte Carlo masks come from a
    second `SeedGenerator`, so the training masks are the exact stream
    `keras.layers.Dropout` draws with the same seed, whatever inference calls
    happen in between (for example validation during `fit`).
    """

    def _init_mc(self, mc: bool, seed: int | None) -> None:
        self._mc_enabled = self.add_weight(
            name="mc_enabled",
            shape=(),
            dtype="bool",
            initializer=keras.initializers.Constant(mc),
            trainable=False,
        )
        self.mc_seed_generator = None
        if self.rate > 0:
            mc_seed = None if seed is None else (
                (seed + _MC_SEED_OFFSET) % 2**31
            )
            self.mc_seed_generator = keras.random.SeedGenerator(
                mc_seed, name="mc_seed_generator"
            )

    @property
    def mc(self) -> bool:
        """Whether dropout stays active at inference (`training=False`)."""
        return bool(ops.convert_to_numpy(self._mc_enabled.value))

    @mc.setter
    def mc(self, enabled: bool) -> None:
        self._mc_enabled.assign(_check_bool("mc", enabled))

    def build(self, input_shape: Shape) -> None:
        # All state is created in `__init__`; defining `build` only keeps
        # Keras from locking the layer before that state exists.
        pass

    def call(self, inputs: Tensor, training: bool | None = False) -> Tensor:
        if training:
            return super().call(inputs, training=True)
        if self.rate == 0:
            return inputs
        dropped = keras.random.dropout(
            inputs,
            self.rate,
            noise_shape=self._mc_noise_shape(inputs),
            seed=self.mc_seed_generator,
        )
        return ops.where(self._mc_enabled.value, dropped, inputs)


@register
class MCDropout(_MCMixin, keras.layers.Dropout):
    """Dropout that can stay active at inference (Monte Carlo dropout).

    With `mc=True` the layer drops units both in training and in inference
    (`training=False`, e.g. `model.predict`), so repeated predictions sample
    the approximate posterior of Gal and Ghahramani. Only this layer is
    affected: BatchNormalization and every other layer stay in inference
    mode, unlike the common `model(x, training=True)` recipe.

    With `mc=False`, the default, the layer is `keras.layers.Dropout`: the
    same training masks for the same seed, and the identity at inference.
    So `fit`'s validation and `evaluate` stay deterministic, and the
    numbers EarlyStopping, checkpoints and `OverfittingDetector` read are
    not noisy. Sampling is asked for where it is wanted:
    `mc_dropout_prediction` and `classify_with_uncertainty` sample every MC
    layer whatever its flag, and `set_mc_dropout(model, True)` (or
    `mc=True`) turns sampling on for a plain `predict` loop.

    The switch is held in a non-trainable boolean variable (`mc_enabled`),
    so setting `layer.mc` or calling `set_mc_dropout(model, ...)` changes an
    already-compiled model's `predict` at once, and it is saved with the
    model. Monte Carlo masks use a second seed generator (seeded from
    `seed` plus a fixed offset when `seed` is given). While off, inference
    still draws (and discards) a mask so the compiled graph need not change.

    Args:
        rate: Float in [0, 1). Fraction of the input units to drop.
        noise_shape: Shape of the binary mask, as in `keras.layers.Dropout`.
            Defaults to `None` (the input's shape).
        seed: Optional non-negative integer seed. Defaults to `None`.
        mc: Whether dropout stays active at inference. Defaults to
            `False`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Input tensor of any rank.
        training: Python boolean. In training mode the layer always drops;
            in inference mode it drops only while `mc` is on.

    Example:

    >>> inputs = keras.Input((16,))
    >>> x = keras.layers.Dense(32, activation="relu")(inputs)
    >>> x = MCDropout(0.3, seed=1, mc=True)(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(x))
    >>> batch = np.random.rand(4, 16).astype("float32")
    >>> samples = np.stack([model.predict(batch, verbose=0)
    ...                     for _ in range(20)])
    >>> mean, std = samples.mean(axis=0), samples.std(axis=0)

    References:
        - [Gal and Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        mc: bool = False,
        **kwargs: Any,
    ) -> None:
        rate = check_rate("rate", rate)
        seed = check_seed("seed", seed)
        mc = _check_bool("mc", mc)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)
        self._init_mc(mc, seed)

    def _mc_noise_shape(self, inputs: Tensor) -> Sequence[Any] | None:
        return self.noise_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mc": self.mc}


@register
class MCSpatialDropout2D(_MCMixin, keras.layers.SpatialDropout2D):
    """SpatialDropout2D that can stay active at inference (Monte Carlo).

    Drops whole feature maps (one mask value per sample and channel), in
    training and, while `mc` is on, also at inference, without putting any
    other layer into training mode. With `mc=False`, the default, it is
    `keras.layers.SpatialDropout2D`. See `MCDropout` for how the switch and
    the seeds work.

    Args:
        rate: Float in [0, 1). Fraction of the feature maps to drop.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `None` (`keras.config.image_data_format()`).
        seed: Optional non-negative integer seed. Defaults to `None`.
        mc: Whether dropout stays active at inference. Defaults to
            `False`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: A 4D tensor.
        training: Python boolean. In training mode the layer always drops;
            in inference mode it drops only while `mc` is on.

    Example:

    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    >>> x = MCSpatialDropout2D(0.2, seed=1, mc=True)(x)

    References:
        - [Gal and Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
        - [Tompson et al., 2015](https://arxiv.org/abs/1411.4280)
    """

    def __init__(self, rate: float, data_format: str | None = None,
                 seed: int | None = None, mc: bool = False,
                 **kwargs: Any) -> None:
        rate = check_rate("rate", rate)
        seed = check_seed("seed", seed)
        mc = _check_bool("mc", mc)
        if data_format is not None and data_format not in (
            "channels_last", "channels_first"
        ):
            raise invalid(
                "data_format", data_format,
                "one of 'channels_last', 'channels_first' or None",
            )
        super().__init__(rate, data_format=data_format, seed=seed, **kwargs)
        self._init_mc(mc, seed)

    def _mc_noise_shape(self, inputs: Tensor) -> Sequence[Any] | None:
        shape = ops.shape(inputs)
        if self.data_format == "channels_first":
            return (shape[0], shape[1], 1, 1)
        return (shape[0], 1, 1, shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mc": self.mc}


def _sublayers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Yields the layers directly held by `layer` (models, wrappers, attrs)."""
    for value in vars(layer).values():
        if isinstance(value, keras.layers.Layer):
            yield value
        elif isinstance(value, collections.abc.Mapping):
            yield from (
                v for v in value.values() if isinstance(v, keras.layers.Layer)
            )
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, keras.layers.Layer))
    if isinstance(layer, keras.Model):
        yield from layer.layers


def set_mc_dropout(model: keras.layers.Layer, enabled: bool) -> int:
    """Turns Monte Carlo mode on or off in every MC layer of a model.

    Walks the model recursively (nested models, wrappers and custom layers
    that hold sub-layers) and sets `mc` on every `MCDropout` and
    `MCSpatialDropout2D`. The change applies to the next `predict` or
    `evaluate` of an already-compiled model.

    Args:
        model: A Keras model or layer.
        enabled: Whether dropout stays active at inference.

    Returns:
        The number of MC layers set.

    Example:

    >>> inputs = keras.Input((8,))
    >>> x = keras.layers.Dense(4)(keras.layers.BatchNormalization()(inputs))
    >>> model = keras.Model(inputs, MCDropout(0.5, mc=False)(x))
    >>> set_mc_dropout(model, True)
    1
    >>> samples = [model.predict(np.ones((2, 8)), verbose=0)
    ...            for _ in range(10)]
    >>> set_mc_dropout(model, False)
    1
    """
    enabled = _check_bool("enabled", enabled)
    if not isinstance(model, keras.layers.Layer):
        raise invalid("model", model, "a keras.Model or keras.layers.Layer",
                      error=TypeError)
    seen, stack, count = set(), [model], 0
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, _MCMixin):
            layer.mc = enabled
            count += 1
        stack.extend(_sublayers(layer))
    return count
