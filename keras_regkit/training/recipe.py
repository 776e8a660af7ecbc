"""A preset's training recipe without TensorFlow: optimizer, compile, tricks.

`ProductionModelBuilder` uses these with its tf.data pipeline; on JAX or
PyTorch (no TensorFlow needed) they train a preset's model from arrays, e.g.
with `keras_regkit.data.ArrayLoader`:

    preset = get_preset("fast")
    model = build_backbone((32, 32, 3), 10, preset)
    adapt_fast_net(model, x_train)
    compile_for_preset(model, preset, 10, steps_per_epoch=len(loader))
    model.fit(loader, epochs=preset.epochs, callbacks=trick_callbacks(preset))
"""

from __future__ import annotations

import keras

from keras_regkit.callbacks.lookahead import Lookahead
from keras_regkit.callbacks.whitening_bias import WhiteningBiasFreezer
from keras_regkit.losses import LabelSmoothingCrossEntropy
from keras_regkit.metrics import TopKAccuracy
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_int
from keras_regkit._validation import invalid
from keras_regkit.models.presets import PresetLike
from keras_regkit.models.presets import get_preset
from keras_regkit.optimizers import LookaheadOptimizer
from keras_regkit.optimizers import MuonSGD
from keras_regkit.schedules import make_learning_rate

NO_DECAY_NAMES = ("bias", "gamma", "beta")
WHITENING_BIAS_EPOCHS = 3  # airbench trains the whitened stem's bias this long
# Where a preset's Lookahead runs: a callback (averages batch-norm
# statistics too) or the optimizer (inside the compiled step, no host work).
LOOKAHEAD_PLACES = ("callback", "optimizer")
# `optimizer: sgd_muon`: airbench94_muon's momentum for the convolution
# filters (their rate is the preset's `muon_learning_rate`; the other
# variables keep the preset's SGD).
MUON_MOMENTUM = 0.6


def make_optimizer(
    preset: PresetLike,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
) -> keras.optimizers.Optimizer:
    """The preset's optimizer: SGD, SGD with Muon filters, or AdamW.

    Biases and batch-norm parameters are excluded from weight decay.
    `"sgd_muon"` is `MuonSGD`: the convolution filters take Muon steps at
    `preset.muon_learning_rate` (at the schedule's peak; they follow its
    shape, and a base rate other than `preset.learning_rate` scales them
    alike) with `MUON_MOMENTUM`, and no weight decay; the rest is the
    preset's SGD.

    Args:
        preset: a `CapacityPreset` or preset name.
        learning_rate: a float or a `LearningRateSchedule`.
    """
    preset = get_preset(preset)
    decay = (preset.weight_decay
             if preset.weight_decay_mode == "decoupled" else None) or None
    if preset.optimizer == "sgd_muon":
        opt = MuonSGD(
            learning_rate, momentum=preset.momentum,
            nesterov=preset.nesterov, weight_decay=decay,
            muon_lr_ratio=preset.muon_learning_rate / preset.learning_rate,
            muon_momentum=MUON_MOMENTUM,
        )
    elif preset.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            learning_rate, momentum=preset.momentum,
            nesterov=preset.nesterov, weight_decay=decay,
        )
    else:
        opt = keras.optimizers.AdamW(learning_rate, weight_decay=decay or 0.0)
    if decay:
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return opt


def compile_for_preset(
    model: keras.Model, preset: PresetLike, num_classes: int,
    learning_rate: float | None = None, steps_per_epoch: int | None = None,
    epochs: int | None = None, jit_compile: bool | str = "auto",
    steps_per_execution: int = 1, lookahead: str = "callback",
) -> keras.Model:
    """Compiles `model` with the preset's loss, optimizer and metrics.

    Args:
        model: a Keras model with a softmax output.
        preset: a `CapacityPreset` or preset name.
        num_classes: number of classes (top-5 accuracy needs it).
        learning_rate: base rate; `None` takes the preset's. Defaults to
            `None`.
        steps_per_epoch: steps per epoch, for the preset's schedule.
            Defaults to `None` (constant rate).
        epochs: epochs of the schedule; `None` takes the preset's.
        jit_compile: passed to `Model.compile`. Defaults to `"auto"`.
        steps_per_execution: passed to `Model.compile`. Defaults to `1`.
        lookahead: where the preset's Lookahead (if any) runs:
            `"callback"` (the `Lookahead` callback of `trick_callbacks`,
            which also averages batch-norm statistics) or `"optimizer"`
            (a `LookaheadOptimizer` with the same schedule, inside the
            compiled step: no per-step host work; needs
            `steps_per_epoch`). Defaults to `"callback"`.

    Returns:
        `model`, compiled.
    """
    preset = get_preset(preset)
    lookahead = check_choice("lookahead", lookahead, LOOKAHEAD_PLACES)
    steps_per_execution = check_int("steps_per_execution",
                                    steps_per_execution, 1)
    epochs = preset.epochs if epochs is None else epochs
    lr = preset.learning_rate if learning_rate is None else learning_rate
    lr = make_learning_rate(
        preset.lr_schedule, lr, steps_per_epoch, epochs,
        preset.warmup_epochs, preset.min_learning_rate,
    )
    optimizer = make_optimizer(preset, lr)
    if preset.lookahead and lookahead == "optimizer":
        if steps_per_epoch is None:
            raise invalid("steps_per_epoch", steps_per_epoch,
                          "the number of steps per epoch when "
                          "lookahead='optimizer' (its ramp spans the run)")
        optimizer = LookaheadOptimizer(
            optimizer, total_steps=int(steps_per_epoch) * int(epochs))
    model.compile(
        optimizer=optimizer,
        steps_per_execution=steps_per_execution,
        loss=LabelSmoothingCrossEntropy(epsilon=preset.label_smoothing),
        metrics=["accuracy", TopKAccuracy(min(5, num_classes))],
        jit_compile=jit_compile,
    )
    return model


def trick_callbacks(preset: PresetLike,
                    lookahead: str = "callback") -> list[keras.callbacks.Callback]:
    """The callbacks a preset's training tricks need (maybe none).

    `Lookahead` when `preset.lookahead` and `lookahead="callback"` (with
    `"optimizer"`, `compile_for_preset` put it in the optimizer);
    `WhiteningBiasFreezer` (3 epochs) when `preset.stem_whitening`.
    """
    preset = get_preset(preset)
    lookahead = check_choice("lookahead", lookahead, LOOKAHEAD_PLACES)
    callbacks: list[keras.callbacks.Callback] = []
    if preset.lookahead and lookahead == "callback":
        callbacks.append(Lookahead())
    if preset.stem_whitening:
        callbacks.append(WhiteningBiasFreezer(WHITENING_BIAS_EPOCHS))
    return callbacks
