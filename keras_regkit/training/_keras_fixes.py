"""Work-arounds for Keras bugs that the builder meets, each scoped and undone.

`fit` under `tf.distribute.MultiWorkerMirroredStrategy` fails in Keras 3
(keras-team/keras#20585, open as of Keras 3.15) in two places of the
TensorFlow trainer:

1. `_maybe_symbolic_build` averages the first batch across workers with
   `strategy.reduce("MEAN", batch, axis=None)`, which raises for a
   per-replica batch in multi-worker mode, even when every variable
   already exists. The builder makes them before `fit`, so the call is
   skipped for a model whose layers, loss, metrics and optimizer are all
   built (for any other model it runs as before).
2. `reduce_per_replica(..., reduction="auto")` averages the step's
   metric results across workers with `strategy.reduce("MEAN", v, axis=0)`;
   the results are scalars, which have no axis 0. Here they are averaged
   over replicas with `axis=None`, which is what the one-worker path
   computes (`tf.reduce_mean` over the replicas' values).

`multi_worker_fit` applies both only under a multi-worker strategy, and
only while its `with` block runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras


def _fully_built(model: keras.Model) -> bool:
    parts = (model.optimizer, model._compile_metrics, model._compile_loss)
    return (all(layer.built for layer in model._flatten_layers())
            and all(p is None or p.built for p in parts))


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model, workers: int) -> Iterator[None]:
    """Lets `model.fit` run under a multi-worker strategy (see the module).

    Args:
        model: the compiled, built model.
        workers: the number of workers; 1 changes nothing.
    """
    if workers <= 1 or keras.backend.backend() != "tensorflow":
        yield
        return
    from keras.src.backend.tensorflow import trainer

    original_reduce = trainer.reduce_per_replica
    original_build = model._maybe_symbolic_build

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean"):
            import tensorflow as tf

            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(iterator: Any = None,
                             data_batch: Any = None) -> Any:
        if _fully_built(model):
            return None
        return original_build(iterator=iterator, data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    # Set on the instance, past Keras's attribute tracking.
    object.__setattr__(model, "_maybe_symbolic_build", maybe_symbolic_build)
    try:
        yield
    finally:
        trainer.reduce_per_replica = original_reduce
        object.__delattr__(model, "_maybe_symbolic_build")
