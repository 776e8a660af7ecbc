"""ProductionModelBuilder: a capacity preset turned into a trained model.

The builder is a facade: the preset (`models/presets.py`) fixes width, depth
and regularization together; a backbone (`models/*.py`) builds the network;
`data/pipeline.py` feeds it through tf.data with per-batch augmentation (or,
where TensorFlow is not installed, `data/array_loader.py` through NumPy
batches); the callbacks watch and save the run. It runs on every Keras
backend; `strategy` takes a `tf.distribute.Strategy` on TensorFlow or a
Keras distribution (`keras.distribution.DataParallel`) on JAX. The
reference recipe's usage runs unchanged:

    builder = ProductionModelBuilder((32, 32, 3), 10, model_capacity="medium")
    model, history = builder.train(X_train, y_train, X_val, y_val,
                                   epochs=200, batch_size=64)
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._choices import AUGMENT_ON
from keras_regkit._choices import LOADERS
from keras_regkit._typing import StrPath
from keras_regkit._validation import check_choice, check_int, check_seed, invalid
from keras_regkit.callbacks import NaNGuard
from keras_regkit.callbacks import OverfittingDetector
from keras_regkit.data.array_loader import check_loader_augmentation
from keras_regkit.data.array_loader import ArrayLoader
from keras_regkit.models import build_backbone
from keras_regkit.models.fast_net import adapt_fast_net
from keras_regkit.models.presets import PresetLike
from keras_regkit.models.presets import get_preset
from keras_regkit.training.evaluation import evaluate_model
from keras_regkit.training.evaluation import predict_probabilities
from keras_regkit.training.precision import Precision
from keras_regkit.training.precision import resolve_precision
from keras_regkit.training.recipe import NO_DECAY_NAMES  # noqa: F401 (re-export)
from keras_regkit.training.recipe import compile_for_preset
from keras_regkit.training.recipe import trick_callbacks
from keras_regkit.training.runs import RunFolder
from keras_regkit.training.runs import tensorboard_available
from keras_regkit.training.runs.workers import check_cluster
from keras_regkit.training.runs.workers import worker_run_dir
from keras_regkit.training._keras_fixes import multi_worker_fit

if TYPE_CHECKING:
    import tensorflow as tf



class ProductionModelBuilder:
    """Builds, compiles and trains a regularized Keras model from a preset.

    Args:
        input_shape: shape of one input image, e.g. `(32, 32, 3)`.
        num_classes: number of classes (>= 2).
        model_capacity: `"small"`, `"medium"`, `"large"`, `"fast"`, a
            `CapacityPreset`, or a path to a YAML preset file. Defaults to
            `"medium"`.
        seed: seed for weights, shuffling and augmentation. Defaults to
            `None`.
        strategy: `None`, a `tf.distribute.Strategy` (TensorFlow backend;
            models are built and compiled in its scope) or a
            Keras distribution, `keras.distribution.DataParallel()` or
            `ModelParallel` (JAX backend; `train` runs in its scope).
            Either way `batch_size` is the global batch. Defaults to
            `None`.
        augment_on: `"pipeline"` (augment in tf.data, on the host CPU) or
            `"model"` (augmentation layers at the front of the model, on the
            accelerator). Defaults to `"pipeline"`.
        precision: `"float32"`, `"mixed_bfloat16"`, `"mixed_float16"` or
            `"auto"` (the faster of float32 and bfloat16, measured on this
            machine: see `resolve_precision`). Defaults to
            `"float32"`.
        loader: how `train` feeds arrays: `"tf.data"` (`make_dataset`:
            every augmentation policy, on any backend, needs TensorFlow
            installed), `"arrays"` (`ArrayLoader`: NumPy batches, no
            TensorFlow, the flip and 2-pixel shift policies of
            `LOADER_AUGMENTATIONS`; the others need `augment_on="model"`;
            on the TensorFlow backend `fit` gets its batches through
            `loader_dataset`, without tf.data's autotuning), or `"auto"`
            (tf.data where TensorFlow is installed, else arrays). A preset
            field the chosen loader cannot apply raises a `ValueError`
            naming it, here. Defaults to `"auto"`.
        **overrides: single preset fields to override, e.g. `epochs=5`.

    Example:

    >>> builder = ProductionModelBuilder((32, 32, 3), 10, "small", epochs=1)
    >>> builder.reg_config["dropout_dense"]
    0.2
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int,
                 model_capacity: PresetLike = "medium",
                 seed: int | None = None,
                 strategy: (tf.distribute.Strategy
                            | keras.distribution.DataParallel
                            | keras.distribution.ModelParallel
                            | None) = None,
                 augment_on: str = "pipeline",
                 precision: str | Precision = "float32",
                 loader: str = "auto",
                 **overrides: Any) -> None:
        shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) \
            else input_shape
        if (not isinstance(shape, tuple) or not shape or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                and d > 0 for d in shape)):
            raise invalid("input_shape", input_shape,
                          "a tuple of positive integers, e.g. (32, 32, 3)")
        self.input_shape = tuple(int(d) for d in shape)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.preset = get_preset(model_capacity, **overrides)
        self.seed = check_seed("seed", seed)
        self.strategy = _check_strategy(strategy)
        # Which worker this is; refuses a TF_CONFIG cluster without a
        # multi-worker strategy (each worker would train alone).
        self.worker = check_cluster(self.strategy)
        self.augment_on = check_choice("augment_on", augment_on, AUGMENT_ON)
        self.loader = _resolve_loader(loader, self.strategy)
        if self.loader == "arrays" and self.augment_on == "pipeline":
            _check_loader_augmentation(self.preset)
        self.precision = resolve_precision(precision)

    @property
    def reg_config(self) -> dict[str, Any]:
        """The reference recipe's regularization mapping for this preset."""
        return dict(self.preset.reg_config)

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        """The tf.distribute strategy's scope (building and compiling)."""
        if self.strategy is None or _is_distribution(self.strategy):
            return contextlib.nullcontext()
        return self.strategy.scope()

    def _distribution_scope(self) -> contextlib.AbstractContextManager[Any]:
        """The Keras distribution's scope: the whole of `train` runs in it,
        since the JAX trainer shards each batch by the distribution current
        when `fit` runs."""
        if _is_distribution(self.strategy):
            return self.strategy.scope()
        return contextlib.nullcontext()

    def _seed_all(self) -> None:
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)

    def build_model(self, architecture: str | None = None) -> keras.Model:
        """Builds the preset's functional model (uncompiled).

        The backbone comes from `keras_regkit.models.build_backbone`, built
        in the strategy's scope and under the builder's precision.

        Args:
            architecture: `"cnn"`, `"mlp"`, `"resnet"` or `"fast"`. Defaults
                to the preset's architecture.
        """
        self._seed_all()
        with self._scope(), self.precision.policy_scope():
            model = build_backbone(self.input_shape, self.num_classes,
                                   self.preset, architecture)
            if self.precision.name == "float32":
                return model
            # Mixed precision: probabilities leave the model in float32, so
            # the loss and metrics never see bfloat16/float16 rounding.
            outputs = keras.layers.Activation(
                "linear", dtype="float32", name="float32_probabilities"
            )(model.output)
            return keras.Model(model.input, outputs, name=model.name)

    def compile_model(self, model: keras.Model,
                      learning_rate: float | None = 0.001,
                      steps_per_epoch: int | None = None,
                      epochs: int | None = None,
                      jit_compile: bool | str = "auto") -> keras.Model:
        """Compiles `model` with the preset's loss, optimizer and metrics.

        Loss: cross-entropy with the preset's label smoothing, for integer,
        one-hot or MixUp/CutMix soft labels alike. Optimizer: AdamW (or SGD)
        with decoupled weight decay when the preset's `weight_decay_mode` is
        `"decoupled"` (the backbone then carries no L2 penalty), so the
        same penalty is never applied twice. Metrics, in the reference recipe's order:
        `accuracy`, `top5_accuracy`.

        Args:
            model: a Keras model.
            learning_rate: base learning rate; `None` takes the preset's.
                Defaults to `0.001` (the reference recipe's).
            steps_per_epoch: steps per epoch, for the preset's schedule.
                Defaults to `None` (constant rate).
            epochs: epochs of the schedule; `None` takes the preset's.
                Defaults to `None`.
            jit_compile: passed to `Model.compile`. Defaults to `"auto"`.

        This is `keras_regkit.training.recipe.compile_for_preset` in the
        strategy's scope, with the reference recipe's default learning
        rate: one recipe serves the builder and TensorFlow-free training.
        """
        with self._scope():
            return compile_for_preset(
                model, self.preset, self.num_classes,
                learning_rate=learning_rate, steps_per_epoch=steps_per_epoch,
                epochs=epochs, jit_compile=jit_compile)

    def get_callbacks(
        self, log_dir: StrPath | None = "./logs",
        run_dir: StrPath | None = None, validation: bool = True,
    ) -> list[keras.callbacks.Callback]:
        """The preset's callbacks.

        A NaN guard (a TerminateOnNaN that raises before the bad epoch is
        recorded), EarlyStopping (restores the best weights, unless the
        preset uses Lookahead), `Lookahead` and `WhiteningBiasFreezer` when
        the preset asks for them, ReduceLROnPlateau when the preset's
        schedule is "plateau",
        OverfittingDetector (threshold 0.15, as the reference recipe; only
        with validation, since it compares the two losses), TensorBoard into
        `log_dir`, and, in the run folder, an atomic best-model checkpoint
        (`best_model.keras`, by validation accuracy), `history.csv` and,
        last, the backup that commits each epoch, EarlyStopping's,
        ReduceLROnPlateau's and Lookahead's state included, for resuming.

        Args:
            log_dir: TensorBoard folder; `None` for none. Defaults to
                `"./logs"`.
            run_dir: run folder for the checkpoint, backup and history;
                defaults to `log_dir`. Defaults to `None`.
            validation: whether validation data will be given; without it
                the callbacks watch the training metrics. Defaults to `True`.
        """
        preset = self.preset
        prefix = "val_" if validation else ""
        run_dir = run_dir if run_dir is not None else log_dir
        folder = RunFolder(run_dir, self.worker.count) \
            if run_dir is not None else None
        callbacks: list[keras.callbacks.Callback] = [NaNGuard()]
        # With Lookahead the run ends on the averaged weights, which no
        # epoch-end snapshot holds: EarlyStopping then stops but does not
        # restore.
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=prefix + "loss", patience=preset.early_stopping_patience,
            restore_best_weights=not preset.lookahead))
        stateful = [callbacks[-1]]
        tricks = trick_callbacks(preset)
        callbacks += tricks
        # Lookahead's slow weights and step go into each epoch's backup.
        stateful += [c for c in tricks if hasattr(c, "backup_state")]
        if preset.lr_schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=prefix + "loss", factor=0.5,
                patience=max(1, preset.early_stopping_patience // 3),
                min_lr=preset.min_learning_rate))
            stateful.append(callbacks[-1])
        if validation:  # it compares training and validation loss
            callbacks.append(OverfittingDetector(
                threshold=0.15, state_path=None if folder is None
                else folder.detector_state))
        if folder is not None:
            callbacks += folder.callbacks(monitor=prefix + "accuracy",
                                          stateful=stateful)
        if log_dir is not None and tensorboard_available():
            callbacks.append(keras.callbacks.TensorBoard(str(log_dir)))
        # The NaN guard first, the backup last (see RunFolder.commit_order).
        return RunFolder.commit_order(callbacks)

    def get_data_augmentation(self) -> keras.Sequential | None:
        """The preset's augmentation as one Keras layer (None for "none").

        For "medium" this is the reference recipe's: horizontal flip, rotation 0.1,
        zoom 0.1, translation 0.1 x 0.1 and contrast 0.1.
        """
        from keras_regkit.data.augmentation import get_augmentation

        return get_augmentation(self.preset.augmentation, seed=self.seed)

    def make_dataset(self, x: npt.ArrayLike | tf.data.Dataset,
                     y: npt.ArrayLike | None = None,
                     batch_size: int | None = None,
                     training: bool = True) -> tf.data.Dataset:
        """A tf.data pipeline for this builder (see `data.make_dataset`).

        `x` may be arrays (with `y`) or a `tf.data.Dataset` of
        `(image, label)` pairs, batched or not (with `y=None`); either way
        the preset's augmentation, mixing and one-hot labels are applied.
        Needs TensorFlow; `make_loader` is the NumPy counterpart.
        """
        from keras_regkit.data.pipeline import make_dataset

        batch_size = batch_size or self.preset.batch_size
        augment = training and self.augment_on == "pipeline"
        mix = self.preset.mix_config if training else None
        # The policy by name: the pipeline builds it with the builder's seed
        # (and gives "alternating_*" flips, which need image indices).
        return make_dataset(
            x, y, batch_size, training=training,
            augmentation=self.preset.augmentation if augment else None,
            mix=mix, num_classes=self.num_classes, seed=self.seed,
        )

    def make_loader(self, x: npt.ArrayLike, y: npt.ArrayLike,
                    batch_size: int | None = None,
                    training: bool = True) -> ArrayLoader:
        """An `ArrayLoader` for this builder: `make_dataset` without TensorFlow.

        The preset's batch size, augmentation (when `augment_on` is
        `"pipeline"`) and MixUp/CutMix, with one-hot labels, through
        `ArrayLoader.from_preset`, which refuses a field it cannot apply.
        """
        recipe = self.preset.replace(
            batch_size=batch_size or self.preset.batch_size)
        if self.augment_on != "pipeline" or not training:
            recipe = recipe.replace(augmentation="none")
        else:
            _check_loader_augmentation(recipe)
        return ArrayLoader.from_preset(x, y, recipe, training,
                                       num_classes=self.num_classes,
                                       seed=self.seed)

    def make_input(self, x: Any, y: Any = None,
                   batch_size: int | None = None,
                   training: bool = True) -> Any:
        """What `train` feeds `fit`, by the builder's `loader`.

        A tf.data pipeline (`make_dataset`) for `loader="tf.data"`, an
        `ArrayLoader` (`make_loader`) for `"arrays"`.
        """
        if self.loader == "tf.data":
            return self.make_dataset(x, y, batch_size, training)
        return self.make_loader(x, y, batch_size, training)

    def with_model_augmentation(self, model: keras.Model) -> keras.Model:
        """`model` behind the preset's augmentation layers (`augment_on="model"`).

        Returns `model` itself when the preset augments nothing. Keras's
        preprocessing layers act only in training, so inference sees the
        images unchanged. On JAX the training step still compiles as a
        whole: the policy's translation, rotation and zoom layers come
        marked by `let_jax_compile`.
        """
        augmentation = self.get_data_augmentation()
        if augmentation is None:
            return model
        inputs = keras.Input(self.input_shape)
        outputs = model(augmentation(inputs))
        return keras.Model(inputs, outputs, name=model.name)

    def train(
        self, X_train: np.ndarray | tf.data.Dataset,
        y_train: np.ndarray | None = None,
        X_val: np.ndarray | tf.data.Dataset | None = None,
        y_val: np.ndarray | None = None, epochs: int | None = None,
        batch_size: int | None = None, architecture: str | None = None,
        run_dir: StrPath | None = None,
        callbacks: Iterable[keras.callbacks.Callback] | None = None,
        verbose: str | int = "auto", jit_compile: bool | str = "auto",
        overwrite: bool = False,
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Builds, compiles and fits the preset's model.

        Args:
            X_train: images (uint8 0-255 or float 0-1) or a tf.data.Dataset
                of `(images, one-hot labels)` batches.
            y_train: integer or one-hot labels; `None` with a dataset.
            X_val: validation images or dataset. Defaults to `None`.
            y_val: validation labels. Defaults to `None`.
            epochs: defaults to the preset's epochs.
            batch_size: global batch size; defaults to the preset's.
            architecture: defaults to the preset's.
            run_dir: run folder (checkpoint, `history.csv`, `summary.json`,
                `config.yaml`, TensorBoard logs, plots); an interrupted run
                resumes from it. Under a multi-worker strategy, give every
                worker the same `run_dir` on shared storage: the chief
                writes it, the others a private copy that they remove.
                Defaults to `None` (no files).
            callbacks: extra callbacks. Defaults to `None`.
            verbose: passed to `fit`. Defaults to `"auto"`.
            jit_compile: passed to `compile`. Defaults to `"auto"`.
            overwrite: replace a finished run already in `run_dir`. Without
                it such a folder is refused (nothing a user produced is
                overwritten). Defaults to `False`.

        Returns:
            `(model, history)`: the model with the best weights restored, and
            the Keras History (every epoch of the run folder on resume).
        """
        epochs = check_int(
            "epochs", self.preset.epochs if epochs is None else epochs, 1)
        batch_size = check_int(
            "batch_size",
            self.preset.batch_size if batch_size is None else batch_size, 1)
        # The config this run really uses, as written to (and checked
        # against) its run folder.
        resolved = self.preset.replace(epochs=epochs, batch_size=batch_size)
        if (X_val is None) != (y_val is None) and not _is_tf_dataset(X_val):
            raise invalid("y_val", None if y_val is None else "array",
                          "labels given together with X_val")
        for name, data in (("X_train", X_train), ("X_val", X_val)):
            if self.loader == "arrays" and _is_tf_dataset(data):
                raise invalid(name, data, "arrays with `loader='arrays'` "
                              "(pass `loader='tf.data'` for a dataset)",
                              TypeError)
            _check_image_shape(name, data, self.input_shape)
        _check_even_split(self.strategy, batch_size, X_val)
        # Only the chief writes `run_dir`; other workers write a private
        # copy, removed on the way out (see `training.runs.workers`).
        with self._distribution_scope(), \
                worker_run_dir(run_dir, self.worker) as run_dir:
            return self._train(
                X_train, y_train, X_val, y_val, epochs, batch_size,
                resolved, architecture, run_dir, callbacks, verbose,
                jit_compile, overwrite)

    def _train(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any,
               epochs: int, batch_size: int, resolved: Any,
               architecture: str | None, run_dir: StrPath | None,
               callbacks: Iterable[keras.callbacks.Callback] | None,
               verbose: str | int, jit_compile: bool | str,
               overwrite: bool) -> tuple[keras.Model, keras.callbacks.History]:
        self._seed_all()
        train_ds = self.make_input(X_train, y_train, batch_size, True)
        val_ds = None
        if X_val is not None:
            val_ds = self.make_input(X_val, y_val, batch_size, False)
        steps = _steps_per_epoch(train_ds)
        model = self.build_model(architecture)
        if self.preset.stem_whitening:  # fit the whitened stem to the data
            adapt_fast_net(model, _first_images(X_train))
        if self.augment_on == "model":
            with self._scope():
                model = self.with_model_augmentation(model)
        self.compile_model(model, learning_rate=None, steps_per_epoch=steps,
                           epochs=epochs, jit_compile=jit_compile)
        _build_training_state(model, train_ds, self._scope)
        folder = RunFolder(run_dir, self.worker.count) \
            if run_dir is not None else None
        if folder is not None:
            folder.prepare(resolved, overwrite)
        cbs = RunFolder.commit_order(self.get_callbacks(
            log_dir=None if folder is None else folder.log_dir,
            run_dir=None if folder is None else folder.path,
            validation=val_ds is not None) + list(callbacks or []))
        if folder is not None:
            folder.write_config(resolved)
        train_ds, val_ds = _fit_input(train_ds), _fit_input(val_ds)
        start = time.perf_counter()
        try:
            with multi_worker_fit(model, self.worker.count):
                history = model.fit(train_ds, validation_data=val_ds,
                                    epochs=epochs, callbacks=cbs,
                                    verbose=verbose,
                                    shuffle=False)  # the pipeline shuffles
        finally:
            wall = time.perf_counter() - start
        if folder is not None:
            folder.finish(
                model, history, wall, n_images=_count_images(X_train),
                info={"preset": self.preset.name, "seed": self.seed},
                plot=_plot_training_curves)
        return model, history

    def predict(self, model: keras.Model, x: npt.ArrayLike,
                batch_size: int = 256,
                tta: bool | str = False) -> npt.NDArray[np.float32]:
        """Class probabilities, optionally averaged over test-time views.

        Args:
            model: a trained model.
            x: images (uint8 or float in [0, 1]).
            batch_size: prediction batch size. Defaults to `256`.
            tta: `False`, `True` / `"flip"` (original + mirror) or
                `"flip_translate"` (also shifted views). Defaults to `False`.
        """
        return predict_probabilities(model, x, batch_size=batch_size, tta=tta)

    def evaluate(self, model: keras.Model, x: np.ndarray, y: np.ndarray,
                 batch_size: int = 256,
                 tta: bool | str = False) -> dict[str, float]:
        """Accuracy (and loss) on `(x, y)`, optionally with test-time views.

        Delegates to `training.evaluation.evaluate_model`, which
        `regkit evaluate` calls too.

        Returns a dict with `accuracy` and `loss` (cross-entropy of the
        averaged probabilities, without label smoothing).
        """
        return evaluate_model(model, x, y, batch_size=batch_size, tta=tta)


def _tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def _is_tf_dataset(x: object) -> bool:
    """Whether `x` is a tf.data.Dataset; never imports TensorFlow."""
    if not type(x).__module__.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


def _is_distribution(strategy: object) -> bool:
    """A Keras distribution (its base class is not public in Keras 3.15)."""
    return isinstance(strategy, (keras.distribution.DataParallel,
                                 keras.distribution.ModelParallel))


def _check_strategy(strategy: Any) -> Any:
    """`None`, a tf.distribute strategy on TensorFlow, or a Keras
    distribution on JAX; anything else is refused, naming `strategy`."""
    backend = keras.backend.backend()
    if strategy is None:
        return None
    if _is_distribution(strategy):
        if backend != "jax":
            raise invalid(
                "strategy", strategy, "a Keras distribution "
                f"on KERAS_BACKEND=jax only (this process runs {backend}); "
                "on TensorFlow pass a tf.distribute.Strategy")
        return strategy
    if type(strategy).__module__.startswith("tensorflow"):
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            if backend != "tensorflow":
                raise invalid(
                    "strategy", strategy, "a tf.distribute.Strategy on "
                    "KERAS_BACKEND=tensorflow only (this process runs "
                    f"{backend}); on JAX pass "
                    "keras.distribution.DataParallel()")
            return strategy
    raise invalid("strategy", strategy, "None, a tf.distribute.Strategy or "
                  "a keras.distribution.DataParallel / ModelParallel",
                  TypeError)


def _resolve_loader(loader: str, strategy: Any) -> str:
    """The loader `train` uses: "tf.data" or "arrays" (see the class)."""
    loader = check_choice("loader", loader, LOADERS)
    has_tf = _tensorflow_installed()
    if loader == "auto":
        return "tf.data" if has_tf else "arrays"
    if loader == "tf.data" and not has_tf:
        raise invalid("loader", loader, "'arrays' or 'auto' where "
                      "TensorFlow is not installed (or install it: pip "
                      "install tensorflow)")
    if loader == "arrays" and strategy is not None and not _is_distribution(
            strategy):
        raise invalid("loader", loader, "'tf.data' or 'auto' with a "
                      "tf.distribute strategy, which distributes a "
                      "tf.data.Dataset")
    return loader


def _check_loader_augmentation(preset: Any) -> None:
    """Refuses a policy the NumPy loader cannot apply, naming the field."""
    check_loader_augmentation(
        preset.name, preset.augmentation,
        "With loader='arrays', pass augment_on='model' (the policy runs as "
        "Keras layers inside the model, on every backend), "
        "loader='tf.data' (needs TensorFlow), or one of those policies as "
        "`augmentation=`.")


def _check_even_split(strategy: Any, batch_size: int, x_val: Any) -> None:
    """Under a Keras distribution every batch must split evenly over the
    devices of its batch axis (JAX refuses a partial shard deep inside
    `fit`); checked here, naming the argument and what would split."""
    if not _is_distribution(strategy):
        return
    mesh = strategy.device_mesh
    shards = int(mesh.shape[list(mesh.axis_names).index(
        strategy.batch_dim_name)])
    if batch_size % shards:
        raise invalid("batch_size", batch_size,
                      f"a multiple of {shards}, the devices that "
                      f"{type(strategy).__name__} splits each batch over")
    if x_val is None or _is_tf_dataset(x_val):
        return
    last = len(x_val) % batch_size
    if last % shards:
        usable = len(x_val) - last % shards
        raise invalid(
            "X_val", f"<{len(x_val)} images>",
            f"a number of images whose last batch ({last} of batch_size="
            f"{batch_size}) splits evenly over {shards} devices, e.g. the "
            f"first {usable}: validation keeps every image, so the last "
            "batch is not dropped")


def _fit_input(data: Any) -> Any:
    """`data` as `fit` should get it: an `ArrayLoader` on TensorFlow
    becomes a tf.data pipeline without autotuning (`loader_dataset`)."""
    if isinstance(data, ArrayLoader) and keras.backend.backend() == (
            "tensorflow"):
        from keras_regkit.data.pipeline import loader_dataset

        return loader_dataset(data)
    return data


def _steps_per_epoch(data: Any) -> int | None:
    """Training steps per epoch, or None when the input cannot tell."""
    if isinstance(data, ArrayLoader):
        return len(data)
    cardinality = int(data.cardinality().numpy())
    return cardinality if cardinality > 0 else None


def _check_image_shape(name: str, x: Any,
                       input_shape: Sequence[int]) -> None:
    """Refuses image arrays whose images are not `input_shape`."""
    if x is None or _is_tf_dataset(x):
        return
    shape = np.shape(x)
    if tuple(shape[1:]) != tuple(input_shape):
        raise invalid(name, f"<array of shape {shape}>",
                      f"images of shape (N, {', '.join(map(str, input_shape))})"
                      " (the builder's input_shape)")


def _build_training_state(
    model: keras.Model, dataset: Any,
    scope: Callable[[], contextlib.AbstractContextManager[Any]],
) -> None:
    """Makes the optimizer's, the loss's and the metrics' variables now.

    Left to Keras (on TensorFlow, without a distribution strategy), they
    are made inside the first traced training step, and tf.function then
    traces that step a second time: about 2 s of every run of a small model
    on 2 CPU cores. Keras's own symbolic build, the one it runs under a
    strategy, makes them from the dataset's element spec without running
    anything; the trained numbers are the same either way.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    # A dataset's element spec, or one real NumPy batch (only its shapes
    # and dtypes are read).
    batch = dataset[0] if isinstance(dataset, ArrayLoader) \
        else dataset.element_spec
    with scope():
        if symbolic_build is not None:
            symbolic_build(data_batch=batch)
        elif model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)


def _count_images(x: object) -> int | None:
    """The number of training images, or None for a dataset."""
    if _is_tf_dataset(x) or not hasattr(x, "__len__"):
        return None
    return len(x)


def _plot_training_curves(history: Mapping[str, Sequence[float]],
                          path: StrPath) -> None:
    """The run folder's training-curve PNG (analysis draws, training calls)."""
    from keras_regkit.analysis.plots import plot_training_diagnostics

    plot_training_diagnostics(history, path)


def _first_images(x: Any, count: int = 5000) -> np.ndarray:
    """Up to `count` training images, from arrays or an (image, label) set."""
    if not _is_tf_dataset(x):
        return np.asarray(x[:count])
    if x.element_spec[0].shape.rank == 4:
        x = x.unbatch()
    images = [np.asarray(image) for image, _ in x.take(count)]
    return np.stack(images)
