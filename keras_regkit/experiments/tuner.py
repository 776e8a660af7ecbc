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

from collections.abc import Mapping

from keras_regkit._validation import check_seed, invalid

# Field -> KerasTuner hyperparameter: ("float", min, max, step, sampling)
# or ("choice", values). Applied over the preset, so unsearched fields keep
# the preset's values.
DEFAULT_SEARCH_SPACE = {
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

_HYPERMODEL_CLASS = None


def _require_keras_tuner():
    try:
        import keras_tuner
    except ImportError as error:
        raise ImportError(
            "keras_regkit.experiments.tuner needs KerasTuner, which is not "
            "installed. Install it with `pip install \"keras_regkit[tuner]\"`"
            " (or `pip install keras-tuner`).") from error
    return keras_tuner


def _hyperparameter(hp, name, spec):
    if spec[0] == "choice":
        return hp.Choice(name, list(spec[1]))
    _, low, high, step, sampling = spec
    return hp.Float(name, min_value=low, max_value=high, step=step,
                    sampling=sampling)


def sample_preset(hp, capacity="small", search_space=None):
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
    values = {}
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


def _hypermodel_class():
    global _HYPERMODEL_CLASS
    if _HYPERMODEL_CLASS is not None:
        return _HYPERMODEL_CLASS
    keras_tuner = _require_keras_tuner()

    class RegularizationHyperModel(keras_tuner.HyperModel):
        """Builds and fits a preset whose regularization is searched."""

        def __init__(self, capacity, input_shape, num_classes,
                     search_space=None, seed=None, name=None, tunable=True):
            super().__init__(name=name, tunable=tunable)
            self.capacity = capacity
            self.input_shape = tuple(input_shape)
            self.num_classes = num_classes
            self.search_space = search_space
            self.seed = check_seed("seed", seed)

        def _builder(self, hp):
            from keras_regkit.training.builder import ProductionModelBuilder

            preset = sample_preset(hp, self.capacity, self.search_space)
            return ProductionModelBuilder(self.input_shape, self.num_classes,
                                          preset, seed=self.seed)

        def build(self, hp):
            builder = self._builder(hp)
            return builder.compile_model(builder.build_model(),
                                         learning_rate=None)

        def fit(self, hp, model, x, y=None, validation_data=None,
                epochs=None, batch_size=None, callbacks=None, **kwargs):
            builder = self._builder(hp)
            train = builder.make_dataset(x, y, batch_size, training=True)
            val = None
            if isinstance(validation_data, (tuple, list)):
                val = builder.make_dataset(*validation_data[:2], batch_size,
                                           training=False)
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


def make_hypermodel(capacity="small", input_shape=(32, 32, 3),
                    num_classes=10, search_space=None, seed=None):
    """A `keras_tuner.HyperModel` searching a preset's regularization.

    `build(hp)` returns the builder's compiled model for a sampled preset;
    `fit(hp, model, x, y, validation_data=..., epochs=...)` trains it
    through the builder's tf.data pipeline (so the sampled augmentation
    and MixUp apply per batch) with the preset's callbacks.

    Args:
        capacity: base preset. Defaults to `"small"`.
        input_shape: shape of one image. Defaults to `(32, 32, 3)`.
        num_classes: number of classes. Defaults to `10`.
        search_space: see `sample_preset`. Defaults to `None`.
        seed: seed of each trial's builder. Defaults to `None`.

    Raises:
        ImportError: when KerasTuner is not installed.
    """
    return _hypermodel_class()(capacity, input_shape, num_classes,
                               search_space, seed)


def __getattr__(name):
    if name == "RegularizationHyperModel":
        return _hypermodel_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
