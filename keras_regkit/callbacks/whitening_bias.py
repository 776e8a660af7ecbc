"""WhiteningBiasFreezer: trains the patch-whitening bias for the first
epochs only (airbench)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import keras

from keras_regkit._registry import register
from keras_regkit._typing import Logs
from keras_regkit._walk import walk_layers
from keras_regkit._validation import check_int
from keras_regkit.layers.whitening import PatchWhitening

if TYPE_CHECKING:
    from typing_extensions import Self


def whitening_layers(model: keras.layers.Layer) -> list[PatchWhitening]:
    """Every `PatchWhitening` layer in `model`, nested models included."""
    return [layer for layer in walk_layers(model)
            if isinstance(layer, PatchWhitening)]


@register
class WhiteningBiasFreezer(keras.callbacks.Callback):
    """Trains the bias of every `PatchWhitening` layer for `epochs` epochs.

    At the start of each epoch (0-based) the bias of each `PatchWhitening`
    layer of the model is trainable iff `epoch < epochs`; from then on the
    layer keeps a frozen copy of it, so momentum and weight decay cannot
    move it either. The switch is a variable the train step reads, so
    nothing is recompiled. airbench trains its whitening bias for the first
    3 epochs.

    Args:
        epochs: Non-negative integer, the number of epochs with a trainable
            bias. Defaults to `3`.

    Example:

    >>> x = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    >>> y = np.arange(8) % 2
    >>> stem = PatchWhitening(patch_size=2)
    >>> stem.adapt(x)
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)), stem, keras.layers.Flatten(),
    ...     keras.layers.Dense(2, activation="softmax")])
    >>> model.compile("sgd", "sparse_categorical_crossentropy")
    >>> _ = model.fit(x, y, epochs=2, verbose=0,
    ...               callbacks=[WhiteningBiasFreezer(1)])

    References:
        - Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024
          (airbench), https://arxiv.org/abs/2404.00498
    """

    def __init__(self, epochs: int = 3) -> None:
        super().__init__()
        self.epochs = check_int("epochs", epochs, 0)

    def get_config(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not whitening_layers(self.model):
            warnings.warn("WhiteningBiasFreezer found no PatchWhitening "
                          "layer in the model; it does nothing.",
                          stacklevel=2)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        # Reading `self.model` re-attaches JAX's training state to the
        # variables, so the assignments below reach the next train step.
        for layer in whitening_layers(self.model):
            layer.set_bias_trainable(epoch < self.epochs)
