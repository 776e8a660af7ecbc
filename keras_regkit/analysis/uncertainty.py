"""Monte Carlo dropout: predictive uncertainty from a trained dropout model.

The common recipe, `model(x, training=True)` repeated, also switches batch
normalization to the statistics of the current batch, so its samples are
not those of the trained network. Here only the dropout layers sample: the
model is cloned with every dropout layer replaced by one that always drops,
sharing every other layer (and so every weight) with the original, and
called in inference mode. The `n_iter` passes are one vectorized `predict`
over the inputs repeated along the batch axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_float, check_int, check_seed
from keras_regkit._validation import invalid
from keras_regkit._walk import walk_layers

# A model's inputs: an array, or a list or dict of arrays for several inputs.
Inputs: TypeAlias = (
    np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray])


def dropout_layer_types() -> tuple[type[keras.layers.Layer], ...]:
    """The layer classes sampled by `mc_dropout_prediction`.

    Keras's `Dropout` (and so `SpatialDropout1D/2D/3D` and keras_regkit's
    `MCDropout` / `MCSpatialDropout2D`), `GaussianDropout`,
    `AlphaDropout`, and keras_regkit's `DropBlock2D` and `ConcreteDropout`.
    """
    types = [keras.layers.Dropout, keras.layers.GaussianDropout,
             keras.layers.AlphaDropout]
    from keras_regkit.layers.concrete_dropout import ConcreteDropout
    from keras_regkit.layers.drop_block import DropBlock2D

    return tuple(types + [DropBlock2D, ConcreteDropout])


class _AlwaysSample(keras.layers.Layer):
    """Calls a dropout layer in training mode whatever the outer mode."""

    def __init__(self, inner: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(name=f"{inner.name}_mc", **kwargs)
        self.inner = inner

    def call(self, inputs: Tensor) -> Tensor:
        return self.inner(inputs, training=True)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.inner.compute_output_shape(input_shape)


def _sampler(layer: keras.layers.Layer, seed: int | None) -> _AlwaysSample:
    """An always-on copy of `layer` (shared when it holds weights)."""
    if layer.weights:  # e.g. ConcreteDropout: its rate and kernel are weights
        return _AlwaysSample(layer)
    config = layer.get_config()
    if seed is not None and "seed" in config:
        config["seed"] = seed
    return _AlwaysSample(type(layer).from_config(config))


def _shares_mask_across_batch(layer: keras.layers.Layer) -> bool:
    shape = getattr(layer, "noise_shape", None)
    return shape is not None and len(shape) > 0 and shape[0] is not None


def mc_sampling_model(
    model: keras.Model, seed: int | None = None,
    layer_types: Sequence[type[keras.layers.Layer]] | None = None,
) -> tuple[keras.Model, bool]:
    """Returns `(clone, vectorizable)`: `model` with dropout always on.

    Every dropout layer is replaced by an always-sampling copy (same
    configuration, `seed + i` for the i-th one when `seed` is given); every
    other layer is the original layer itself, so weights are shared and
    batch normalization stays in inference mode. `vectorizable` is False
    when a dropout layer shares one mask across the batch (a `noise_shape`
    with a fixed first dimension), so repeats must be separate calls.

    Layers nested in Sequential or Functional sub-models are reached;
    those inside other (subclassed) layers are not.

    Args:
        model: a Sequential or Functional Keras model (nested ones too).
        seed: optional integer seed for the dropout masks. Defaults to
            `None`.
        layer_types: classes to sample. Defaults to `None`
            (`dropout_layer_types()`).
    """
    types = tuple(layer_types or dropout_layer_types())
    found: list[keras.layers.Layer] = []
    vectorizable = [True]

    def clone_function(layer: keras.layers.Layer) -> keras.layers.Layer:
        if not isinstance(layer, types):
            return layer
        if _shares_mask_across_batch(layer):
            vectorizable[0] = False
        found.append(layer)
        layer_seed = None if seed is None else seed + len(found) - 1
        return _sampler(layer, layer_seed)

    # Cloning a compiled model would compile the clone too (an optimizer
    # build, and a failure for unserializable losses); the clone only
    # predicts, so compilation is hidden while cloning.
    compiled = [(m, m.compiled) for m in walk_layers(model, wrapped=False)
                if isinstance(m, keras.Model) and getattr(m, "compiled", False)]
    try:
        for m, _ in compiled:
            m.compiled = False
        clone = keras.models.clone_model(
            model, clone_function=clone_function, recursive=True)
    except ValueError as error:
        if "only supported for Sequential" not in str(error):
            raise
        raise ValueError(
            f"Cannot resample the dropout layers of a subclassed model "
            f"({type(model).__name__}): Monte Carlo dropout here needs a "
            "Sequential or Functional model. For a subclassed model, use "
            "keras_regkit's MCDropout layers, call set_mc_dropout(model, "
            "True) and predict repeatedly.") from error
    finally:
        for m, flag in compiled:
            m.compiled = flag
    if not found:
        raise ValueError(
            "The model has no dropout layer to sample (looked for "
            + ", ".join(t.__name__ for t in types) + ").")
    return clone, vectorizable[0]


class _RepeatedBatches(keras.utils.PyDataset):
    """Batches of the inputs repeated `n_iter` times, sample by sample.

    Row `r` of the virtual array is sample `r // n_iter`; it is never built
    whole, only one batch at a time.
    """

    def __init__(self, x: Inputs, n_iter: int, batch_size: int) -> None:
        super().__init__()
        self.x, self.n_iter, self.batch_size = x, n_iter, batch_size
        self.rows = len(keras.tree.flatten(x)[0]) * n_iter

    def __len__(self) -> int:
        return -(-self.rows // self.batch_size)

    def __getitem__(self, index: int) -> tuple[Inputs]:
        start = index * self.batch_size
        stop = min(start + self.batch_size, self.rows)
        samples = np.arange(start, stop) // self.n_iter
        return (keras.tree.map_structure(lambda a: a[samples], self.x),)


def mc_dropout_prediction(
    model: keras.Model, x: Inputs, n_iter: int = 100,
    batch_size: int | None = None, seed: int | None = None,
    layer_types: Sequence[type[keras.layers.Layer]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte Carlo dropout predictions with only dropout layers sampling.

    Args:
        model: a trained Sequential or Functional Keras model with dropout
            layers (Keras's own, or keras_regkit's). Its dropout layers
            sample whatever their `mc` flag; the model is not modified.
        x: inputs, an array (or a list/dict of arrays for several inputs),
            in the form the model expects.
        n_iter: number of stochastic forward passes. Defaults to `100`.
        batch_size: rows (input repeats) per forward pass. Defaults to
            `None` (`max(256, n_iter)`).
        seed: optional integer seed for the dropout masks. Defaults to
            `None` (each layer's own seed).
        layer_types: classes to sample. Defaults to `None`
            (`dropout_layer_types()`).

    Returns:
        `(mean, std, predictions)`: `predictions` of shape
        `(n_iter, N, ...)`, and its mean and standard deviation over the
        first axis.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dropout(0.5),
    ...     keras.layers.Dense(10, activation="softmax")])
    >>> x_test = np.random.default_rng(0).random((100, 8), "float32")
    >>> mean, std, samples = mc_dropout_prediction(model, x_test[:10],
    ...                                            n_iter=50, seed=0)
    >>> samples.shape
    (50, 10, 10)

    References:
        - [Gal and Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """
    n_iter = check_int("n_iter", n_iter, 1)
    seed = check_seed("seed", seed)
    if batch_size is None:
        batch_size = max(256, n_iter)
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(model, keras.Model):
        raise invalid("model", type(model).__name__, "a keras.Model",
                      TypeError)
    x = keras.tree.map_structure(np.asarray, x)
    n = len(keras.tree.flatten(x)[0])
    clone, vectorizable = mc_sampling_model(model, seed, layer_types)
    if vectorizable:
        flat = clone.predict(_RepeatedBatches(x, n_iter, batch_size),
                             verbose=0)
        _check_single_output(flat)
        flat = np.asarray(flat)
        samples = flat.reshape((n, n_iter) + flat.shape[1:]).swapaxes(0, 1)
    else:
        samples = []
        for _ in range(n_iter):
            out = clone.predict(x, batch_size=batch_size, verbose=0)
            _check_single_output(out)
            samples.append(np.asarray(out))
        samples = np.stack(samples)
    return samples.mean(axis=0), samples.std(axis=0), samples


def _check_single_output(out: object) -> None:
    if isinstance(out, (list, tuple, dict)):
        raise invalid("model", f"{len(out)} outputs", "a single output")


def predictive_entropy(mean_probs: npt.ArrayLike,
                       eps: float = 1e-12) -> npt.NDArray[np.float64]:
    """Entropy (nats) of the mean predictive distribution, per sample."""
    p = np.asarray(mean_probs, dtype="float64")
    return -(p * np.log(np.clip(p, eps, 1.0))).sum(axis=-1)


def mutual_information(predictions: npt.ArrayLike,
                       eps: float = 1e-12) -> npt.NDArray[np.float64]:
    """BALD mutual information between prediction and weights, per sample.

    The predictive entropy minus the mean entropy of the single passes:
    zero when every pass agrees, large when confident passes disagree
    (epistemic uncertainty).

    Args:
        predictions: Monte Carlo probabilities `(n_iter, N, classes)`.
        eps: clipping floor for the logarithm. Defaults to `1e-12`.

    References:
        - [Houlsby et al., 2011](https://arxiv.org/abs/1112.5745)
    """
    predictions = np.asarray(predictions, dtype="float64")
    total = predictive_entropy(predictions.mean(axis=0), eps)
    expected = predictive_entropy(predictions, eps).mean(axis=0)
    return np.maximum(total - expected, 0.0)


def classify_with_uncertainty(
    model: keras.Model, x: Inputs, n_iter: int = 100,
    threshold: float = 0.1, batch_size: int | None = None,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Classes with Monte Carlo dropout uncertainty, per sample.

    Args:
        model: a trained classifier with dropout and a softmax output.
        x: inputs.
        n_iter: Monte Carlo passes. Defaults to `100`.
        threshold: uncertainty above which a prediction is flagged as low
            confidence. Defaults to `0.1`.
        batch_size: rows per forward pass. Defaults to `None`.
        seed: optional integer seed. Defaults to `None`.

    Returns:
        A dict of per-sample arrays: `predicted_class` (argmax of the mean),
        `probability` (max of the mean), `uncertainty` (standard deviation
        of the predicted class), `low_confidence` (`uncertainty >
        threshold`), `predictive_entropy` and `mutual_information`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dropout(0.5),
    ...     keras.layers.Dense(10, activation="softmax")])
    >>> x_test = np.random.default_rng(0).random((100, 8), "float32")
    >>> result = classify_with_uncertainty(model, x_test[:100], n_iter=50)
    >>> x_review = x_test[:100][result["low_confidence"]]

    References:
        - [Gal and Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """
    threshold = check_float("threshold", threshold, 0.0)
    mean, std, predictions = mc_dropout_prediction(
        model, x, n_iter=n_iter, batch_size=batch_size, seed=seed)
    predicted = mean.argmax(axis=-1)
    rows = np.arange(len(predicted))
    uncertainty = std[rows, predicted]
    return {
        "predicted_class": predicted,
        "probability": mean[rows, predicted],
        "uncertainty": uncertainty,
        "low_confidence": uncertainty > threshold,
        "predictive_entropy": predictive_entropy(mean),
        "mutual_information": mutual_information(predictions),
    }
