"""RegularizationScheduler: dropout rates and regularizer strength over
epochs, on an already compiled model."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_regkit._registry import register
from keras_regkit._typing import Logs
from keras_regkit._walk import walk_layers
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_int
from keras_regkit._validation import invalid
from keras_regkit.callbacks.weight_monitor import check_layer_names

if TYPE_CHECKING:
    from typing_extensions import Self

# Attributes that hold a regularizer's strength, by convention: Keras's
# L1/L2/L1L2 (`l1`, `l2`), OrthogonalRegularizer (`factor`), keras_regkit's
# ElasticNet (`l1`, `l2`), L2SP (`alpha`) and GroupLasso (`l`). A regularizer
# may list its own in a `strength_attributes` class attribute.
STRENGTH_ATTRIBUTES = ("l1", "l2", "l", "alpha", "factor")
MODES = ("scale", "absolute")

# A checked schedule: a callable `epoch -> value`, or `(start_epoch, value)`
# pieces.
Schedule = Callable[[int], float] | list[tuple[int, float]]
# What the scheduler changes: (layer or regularizer, attribute, start value).
_Target = tuple[Any, str, float]


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def piecewise_value(pieces: Sequence[tuple[int, float]], epoch: int) -> float:
    """Returns the value of the last `(start_epoch, value)` piece started.

    `pieces` are sorted by strictly increasing start epochs, the first at 0.
    """
    value = pieces[0][1]
    for start, piece_value in pieces:
        if start > epoch:
            break
        value = piece_value
    return value


def _check_schedule(name: str, schedule: Any) -> Schedule | None:
    if schedule is None or callable(schedule):
        return schedule
    expected = ("None, a callable `epoch -> value`, or a list of "
                "`(start_epoch, value)` pairs with increasing integer "
                "starts, the first 0, and finite non-negative values")
    try:
        pieces = [(start, value) for start, value in schedule]
    except (TypeError, ValueError):
        raise invalid(name, schedule, expected) from None
    starts = [s for s, _ in pieces]
    ok = (
        pieces and starts[0] == 0
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                for s in starts)
        and all(a < b for a, b in zip(starts, starts[1:]))
        and all(_is_real(v) and math.isfinite(v) and v >= 0
                for _, v in pieces)
    )
    if not ok:
        raise invalid(name, schedule, expected)
    return [(int(s), float(v)) for s, v in pieces]


def strength_attributes(
    regularizer: keras.regularizers.Regularizer,
) -> list[str]:
    """Names of the numeric strength attributes of `regularizer`."""
    names = getattr(regularizer, "strength_attributes", STRENGTH_ATTRIBUTES)
    return [n for n in names if _is_real(getattr(regularizer, n, None))]


def find_regularizers(
    layer: keras.layers.Layer,
) -> list[keras.regularizers.Regularizer]:
    """The distinct regularizer objects a layer applies (weights, activity)."""
    found = [getattr(v, "regularizer", None) for v in layer.weights]
    found.append(getattr(layer, "activity_regularizer", None))
    found.extend(value for key, value in vars(layer).items()
                 if key.endswith("regularizer"))
    unique: dict[int, keras.regularizers.Regularizer] = {}
    for reg in found:
        if isinstance(reg, keras.regularizers.Regularizer):
            unique.setdefault(id(reg), reg)
    return list(unique.values())


@register
class RegularizationScheduler(keras.callbacks.Callback):
    """Changes dropout rates and regularizer strength from epoch to epoch.

    At each epoch start the schedules give a value. The dropout schedule
    sets the `rate` of every dropout-like layer of the model (Keras's
    Dropout, SpatialDropout*, GaussianDropout, AlphaDropout and any layer
    with a float `rate`, such as keras_regkit's DropConnect); the
    regularizer schedule sets the strength (`l1`, `l2`, `l`, `alpha`,
    `factor`) of every regularizer attached to the model's weights or
    activities (Keras's L1/L2/L1L2/Orthogonal, keras_regkit's ElasticNet,
    L2SP, GroupLasso). In `"scale"` mode the value multiplies each layer's
    own starting value, the one this scheduler first saw (so dense 0.4 /
    conv 0.2 keep their ratio); in `"absolute"` mode it replaces it.

    Keras layers read these numbers as Python floats when the train step is
    traced, so after a change the scheduler rebuilds the model's train and
    test functions (`make_train_function(force=True)`): no recompiling, the
    optimizer state is kept, and it works with `jit_compile=True`. Each
    change costs one retrace (TensorFlow may log a retracing warning after
    several); prefer schedules whose value changes on few epochs. The final
    values stay on the model after training. Each epoch's schedule value
    goes into the logs as `dropout_scale` (or `dropout_rate`) and
    `regularizer_scale` (or `regularizer_strength`).

    Args:
        dropout_schedule: None, a callable `epoch -> value` (0-based
            epochs), or a list of `(start_epoch, value)` pairs. Defaults to
            `None`.
        regularizer_schedule: the same for regularizer strength. Defaults
            to `None`.
        dropout_mode: `"scale"` or `"absolute"`. Defaults to `"scale"`.
        regularizer_mode: `"scale"` or `"absolute"`. Defaults to `"scale"`.
        layers: None for the whole model, or a list of layer names.
            Defaults to `None`.
        verbose: 1 prints each change. Defaults to `0`.

    Example (the reference recipe's recipe: learning rate x0.1 every 30 epochs, L2
    scaled by initial_lr / current_lr to keep the effective decay):

    >>> lr = lambda epoch: 1e-3 * 0.1 ** (epoch // 30)
    >>> callbacks = [
    ...     keras.callbacks.LearningRateScheduler(lr),
    ...     RegularizationScheduler(
    ...         regularizer_schedule=lambda e: lr(0) / lr(e),
    ...         dropout_schedule=[(0, 0.0), (5, 1.0)]),  # dropout warm-up
    ... ]

    References:
        - Morerio et al., "Curriculum Dropout", ICCV 2017 (dropout rates
          scheduled over training).
        - Loshchilov and Hutter, "Decoupled Weight Decay Regularization",
          ICLR 2019 (how L2 strength and learning rate interact).
    """

    def __init__(
        self,
        dropout_schedule: (
            Callable[[int], float] | Sequence[tuple[int, float]] | None
        ) = None,
        regularizer_schedule: (
            Callable[[int], float] | Sequence[tuple[int, float]] | None
        ) = None,
        dropout_mode: str = "scale",
        regularizer_mode: str = "scale",
        layers: Sequence[str] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        if dropout_schedule is None and regularizer_schedule is None:
            raise invalid("dropout_schedule", None, "a schedule for dropout "
                          "or regularizer_schedule (both are None)")
        self.dropout_schedule = _check_schedule(
            "dropout_schedule", dropout_schedule)
        self.regularizer_schedule = _check_schedule(
            "regularizer_schedule", regularizer_schedule)
        self.dropout_mode = check_choice("dropout_mode", dropout_mode, MODES)
        self.regularizer_mode = check_choice(
            "regularizer_mode", regularizer_mode, MODES)
        if self.dropout_mode == "absolute" and isinstance(
                self.dropout_schedule, list):
            for _, value in self.dropout_schedule:
                if value >= 1:
                    raise invalid("dropout_schedule", dropout_schedule,
                                  "absolute rates in [0, 1)")
        self.layers = check_layer_names("layers", layers)
        self.verbose = check_int("verbose", verbose, 0, 1)
        # (id, attribute) -> (object, starting value), kept across fits
        self._initial: dict[tuple[int, str], tuple[Any, float]] = {}
        self._dropout_targets: list[_Target] = []
        self._reg_targets: list[_Target] = []
        self.current: dict[str, float] = {}

    def get_config(self) -> dict[str, Any]:
        return {
            "dropout_schedule": self.dropout_schedule,
            "regularizer_schedule": self.regularizer_schedule,
            "dropout_mode": self.dropout_mode,
            "regularizer_mode": self.regularizer_mode,
            "layers": self.layers, "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def _selected_layers(self) -> Iterator[keras.layers.Layer]:
        for layer in walk_layers(self.model):
            if self.layers is None or layer.name in self.layers:
                yield layer

    def _remember(self, obj: Any, attr: str) -> float:
        key = (id(obj), attr)
        if key not in self._initial:
            self._initial[key] = (obj, float(getattr(obj, attr)))
        return self._initial[key][1]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._dropout_targets, self._reg_targets = [], []
        regs: dict[int, keras.regularizers.Regularizer] = {}
        for layer in self._selected_layers():
            if layer is self.model:
                continue
            if self.dropout_schedule is not None and _is_real(
                    getattr(layer, "rate", None)):
                start = self._remember(layer, "rate")
                if (start == 0 and not hasattr(layer, "seed_generator")
                        and self.dropout_mode == "absolute"):
                    warnings.warn(
                        f"RegularizationScheduler skips layer `{layer.name}`:"
                        " it was built with rate=0 and has no seed generator."
                        " Build it with a positive rate.", stacklevel=2)
                    continue
                self._dropout_targets.append((layer, "rate", start))
            if self.regularizer_schedule is not None:
                for reg in find_regularizers(layer):
                    regs.setdefault(id(reg), reg)
        for reg in regs.values():
            for attr in strength_attributes(reg):
                start = self._remember(reg, attr)
                self._reg_targets.append((reg, attr, start))
        for kind, schedule, targets in (
                ("dropout", self.dropout_schedule, self._dropout_targets),
                ("regularizer", self.regularizer_schedule, self._reg_targets)):
            if schedule is not None and not targets:
                warnings.warn(f"RegularizationScheduler found no {kind} to "
                              f"schedule (layers={self.layers}).",
                              stacklevel=2)

    def _value(self, schedule: Schedule, name: str, epoch: int) -> float:
        if isinstance(schedule, list):
            return piecewise_value(schedule, epoch)
        value = schedule(epoch)
        if not _is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"`{name}` must return a finite non-negative "
                             f"float. Received: {value!r} at epoch {epoch}")
        return float(value)

    def _apply(self, targets: Sequence[_Target], value: float, mode: str,
               is_rate: bool, name: str, epoch: int) -> bool:
        changed = False
        for obj, attr, start in targets:
            new = value if mode == "absolute" else start * value
            if is_rate and not 0 <= new < 1:
                raise ValueError(
                    f"`{name}` gives layer `{obj.name}` rate={new:g} at epoch "
                    f"{epoch}; a rate must be in [0, 1).")
            if getattr(obj, attr) != new:
                setattr(obj, attr, new)
                changed = True
        return changed

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        changed = False
        if self.dropout_schedule is not None:
            value = self._value(self.dropout_schedule, "dropout_schedule",
                                epoch)
            self.current["dropout"] = value
            changed |= self._apply(self._dropout_targets, value,
                                   self.dropout_mode, True,
                                   "dropout_schedule", epoch)
        if self.regularizer_schedule is not None:
            value = self._value(self.regularizer_schedule,
                                "regularizer_schedule", epoch)
            self.current["regularizer"] = value
            changed |= self._apply(self._reg_targets, value,
                                   self.regularizer_mode, False,
                                   "regularizer_schedule", epoch)
        if changed:
            # The train step bakes the rates and strengths in when traced.
            if keras.backend.backend() == "jax":
                # jax.jit reuses its trace of the same `train_step` method
                # while the old train function is still referenced (by any
                # callback, say), which would keep the old values: drop the
                # traces so the new step traces the new values.
                import jax

                jax.clear_caches()
            self.model.make_train_function(force=True)
            self.model.make_test_function(force=True)
            if self.verbose:
                print(f"RegularizationScheduler epoch {epoch}: {self.current}")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is None:
            return
        if "dropout" in self.current:
            key = ("dropout_scale" if self.dropout_mode == "scale"
                   else "dropout_rate")
            logs[key] = self.current["dropout"]
        if "regularizer" in self.current:
            key = ("regularizer_scale" if self.regularizer_mode == "scale"
                   else "regularizer_strength")
            logs[key] = self.current["regularizer"]
