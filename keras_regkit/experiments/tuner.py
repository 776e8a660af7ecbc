"""KerasTuner integration: search a capacity preset's regularization fields.

Install the extra with `pip install "keras_regkit[tuner]"`. KerasTuner is
imported only when a hypermodel is made, so this module imports without it.

    hypermodel = make_hypermodel("small", input_shape=(32, 32, 3),
                                 num_classes=10, seed=0)
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy",
                                     max_trials=10)
    tuner.search(x_train, y_train, validation_data=(x_val, y_val),
                 epochs=20)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

from keras_regkit._validation import check_seed, invalid

if TYPE_CHECKING:
    import keras
    import keras_tuner
    import numpy.typing as npt
    import tensorflow as tf

    from keras_regkit.models.presets import CapacityPreset, PresetLike
    from keras_regkit.training.builder import ProductionModelBuilder

# A hyperparameter: `("float", min, max, step, sampling)` or
# `("choice", values)`.
SearchSpec: TypeAlias = Sequence[Any]

# Field -> KerasTuner hyperparameter: ("float", min, max, step, sampling)
# or ("choice", values). Applied over the preset, so unsearched fields keep
# the preset's values.
DEFAULT_SEARCH_SPACE: dict[str, SearchSpec] = {
    "dropout_dense": ("float", 0.0, 0.6, 0.1, "linear"),
    "dropout_conv": ("float", 0.0, 0.4, 0.1, "linear"),
    "weight_decay": ("float", 1e-4, 1e-1, None, "log"),
    "label_smoothing": ("float", 0.0, 0.2, 0.05, "linear"),
    "augmentation": ("choice", ("none", "flip", "light", "standard")),
    "mixup_alpha": ("choice", (0.0, 0.2, 0.4)),
}
# In "l2" weight-decay mode the kernels carry L2 and weight_decay is unused.
L2_MODE_SEARCH_SPACE = dict(
    {k: v for k, v in DEFAULT_SEARCH_SPACE.items() if k != "weight_decay"},
    l2=("float", 1e-6, 1e-2, None, "log"),
)

_HYPERMODEL_CLASS: type[Any] | None = None


def _require_keras_tuner() -> ModuleType:
    try:
        import keras_tuner
    except ImportError as error:
        raise ImportError(
            "keras_regkit.experiments.tuner needs KerasTuner, which is not "
            "installed. Install it with `pip install \"keras_regkit[tuner]\"`"
            " (or `pip install keras-tuner`).") from error
    return keras_tuner


def _hyperparameter(hp: keras_tuner.HyperParameters, name: str,
                    spec: SearchSpec) -> Any:
    if spec[0] == "choice":
        return hp.Choice(name, list(spec[1]))
    _, low, high, step, sampling = spec
    return hp.Float(name, min_value=low, max_value=high, step=step,
                    sampling=sampling)


def sample_preset(
    hp: keras_tuner.HyperParameters, capacity: PresetLike = "small",
    search_space: Mapping[str, SearchSpec] | None = None,
) -> CapacityPreset:
    """Draws a preset from KerasTuner hyperparameters `hp`.

    Args:
        hp: a `keras_tuner.HyperParameters` (or anything with the same
            `Float` and `Choice` methods).
        capacity: the base preset (name, `CapacityPreset` or YAML path).
            Defaults to `"small"`.
        search_space: mapping of preset field to `("float", min, max, step,
            sampling)` or `("choice", values)`. Defaults to `None`
            (`DEFAULT_SEARCH_SPACE`, or `L2_MODE_SEARCH_SPACE` for a preset
            in "l2" weight-decay mode).

    Returns:
        The base preset with the sampled fields replaced.
    """
    from keras_regkit.models.presets import CapacityPreset, get_preset

    preset = get_preset(capacity)
    if search_space is None:
        search_space = (L2_MODE_SEARCH_SPACE
                        if preset.weight_decay_mode == "l2"
                        else DEFAULT_SEARCH_SPACE)
    if not isinstance(search_space, Mapping) or not search_space:
        raise invalid("search_space", search_space,
                      "a non-empty mapping of preset field to spec")
    fields = CapacityPreset.field_names()
    values: dict[str, Any] = {}
    for name, spec in search_space.items():
        if name not in fields or name == "name":
            raise invalid("search_space", name,
                          "preset fields among " + ", ".join(fields[1:]))
        if not isinstance(spec, (tuple, list)) or not spec or not (
                (spec[0] == "choice" and len(spec) == 2)
                or (spec[0] == "float" and len(spec) == 5)):
            raise invalid(f"search_space[{name!r}]", spec,
                          "('float', min, max, step, sampling) or "
                          "('choice', values)")
        values[name] = _hyperparameter(hp, name, spec)
    return preset.replace(**values)


def _hypermodel_class() -> type[Any]:
    global _HYPERMODEL_CLASS
    if _HYPERMODEL_CLASS is not None:
        return _HYPERMODEL_CLASS
    # The base class through a plain name: mypy resolves base classes by
    # name, not as attributes of a variable (KerasTuner is `Any` to it).
    HyperModel: Any = _require_keras_tuner().HyperModel

    class RegularizationHyperModel(HyperModel):
        """Builds and fits a preset whose regularization is searched."""

        def __init__(self, capacity: PresetLike, input_shape: Sequence[int],
                     num_classes: int,
                     search_space: Mapping[str, SearchSpec] | None = None,
                     seed: int | None = None, name: str | None = None,
                     tunable: bool = True, loader: str = "auto",
                     augment_on: str = "pipeline") -> None:
            super().__init__(name=name, tunable=tunable)
            self.capacity = capacity
            self.input_shape = tuple(input_shape)
            self.num_classes = num_classes
            self.search_space = search_space
            self.seed = check_seed("seed", seed)
            self.loader, self.augment_on = loader, augment_on

        def _builder(
                self, hp: keras_tuner.HyperParameters) -> ProductionModelBuilder:
            from keras_regkit.training.builder import ProductionModelBuilder

            preset = sample_preset(hp, self.capacity, self.search_space)
            return ProductionModelBuilder(self.input_shape, self.num_classes,
                                          preset, seed=self.seed,
                                          loader=self.loader,
                                          augment_on=self.augment_on)

        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            builder = self._builder(hp)
            model = builder.build_model()
            if builder.augment_on == "model":
                model = builder.with_model_augmentation(model)
            return builder.compile_model(model, learning_rate=None)

        def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model,
                x: npt.ArrayLike | tf.data.Dataset,
                y: npt.ArrayLike | None = None,
                validation_data: Sequence[Any] | tf.data.Dataset | None = None,
                epochs: int | None = None, batch_size: int | None = None,
                callbacks: Iterable[keras.callbacks.Callback] | None = None,
                **kwargs: Any) -> keras.callbacks.History:
            builder = self._builder(hp)
            train = builder.make_input(x, y, batch_size, training=True)
            val = None
            if isinstance(validation_data, (tuple, list)):
                # mypy lets a starred sequence of unknown length fill every
                # parameter, so it sees `training` twice (python/mypy#20441).
                val = builder.make_input(  # type: ignore[call-arg, misc]
                    *validation_data[:2], batch_size, training=False)
            elif validation_data is not None:
                val = validation_data
            callbacks = list(callbacks or []) + builder.get_callbacks(
                log_dir=None, validation=val is not None)
            kwargs.setdefault("shuffle", False)  # the pipeline shuffles
            return model.fit(train, validation_data=val,
                             epochs=epochs or builder.preset.epochs,
                             callbacks=callbacks, **kwargs)

    _HYPERMODEL_CLASS = RegularizationHyperModel
    return _HYPERMODEL_CLASS


def make_hypermodel(
    capacity: PresetLike = "small", input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    search_space: Mapping[str, SearchSpec] | None = None,
    seed: int | None = None, loader: str = "auto",
    augment_on: str = "pipeline",
) -> keras_tuner.HyperModel:
    """A `keras_tuner.HyperModel` searching a preset's regularization.

    `build(hp)` returns the builder's compiled model for a sampled preset;
    `fit(hp, model, x, y, validation_data=..., epochs=...)` trains it
    through the builder's input (`ProductionModelBuilder.make_input`: so
    the sampled augmentation and MixUp apply per batch) with the preset's
    callbacks.

    Args:
        capacity: base preset. Defaults to `"small"`.
        input_shape: shape of one image. Defaults to `(32, 32, 3)`.
        num_classes: number of classes. Defaults to `10`.
        search_space: see `sample_preset`. Defaults to `None`.
        seed: seed of each trial's builder. Defaults to `None`.
        loader: each trial's builder `loader` (`"auto"`, `"tf.data"` or
            `"arrays"`). Defaults to `"auto"`.
        augment_on: each trial's builder `augment_on`. Defaults to
            `"pipeline"`.

    Raises:
        ImportError: when KerasTuner is not installed.
    """
    return _hypermodel_class()(capacity, input_shape, num_classes,
                               search_space, seed, loader=loader,
                               augment_on=augment_on)


def __getattr__(name: str) -> Any:
    if name == "RegularizationHyperModel":
        return _hypermodel_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
