"""TopKAccuracy: one metric for integer and one-hot labels."""

import keras
import numpy as np
import pytest

from keras_regkit.metrics import TopKAccuracy

PROBS = np.array([
    [0.1, 0.5, 0.2, 0.15, 0.05],
    [0.6, 0.1, 0.1, 0.1, 0.1],
    [0.05, 0.05, 0.1, 0.3, 0.5],
    [0.2, 0.2, 0.2, 0.2, 0.2 - 1e-3],
], dtype="float32")
LABELS = np.array([2, 0, 1, 4])
# Top-2 hits: sample 0 (label 2 is second), 1 (first), 2 miss (label 1 is
# last), 3 miss (label 4 has the lowest probability).


@pytest.mark.parametrize("one_hot", [False, True])
def test_top_k_accuracy_counts_hits(one_hot):
    labels = keras.utils.to_categorical(LABELS, 5) if one_hot else LABELS
    metric = TopKAccuracy(k=2)
    metric.update_state(labels, PROBS)
    assert float(metric.result()) == pytest.approx(0.5)
    assert metric.name == "top2_accuracy"


def test_matches_keras_sparse_and_categorical_metrics():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=64).astype("float32")
    labels = rng.integers(0, 10, size=64)
    ours = TopKAccuracy(5)
    ours.update_state(labels, probs)
    sparse = keras.metrics.SparseTopKCategoricalAccuracy(5)
    sparse.update_state(labels, probs)
    assert float(ours.result()) == pytest.approx(float(sparse.result()))
    ours.reset_state()
    ours.update_state(keras.utils.to_categorical(labels, 10), probs)
    assert float(ours.result()) == pytest.approx(float(sparse.result()))


def test_config_round_trip_and_validation():
    metric = TopKAccuracy(3, name="t3")
    clone = TopKAccuracy.from_config(metric.get_config())
    assert (clone.k, clone.name) == (3, "t3")
    with pytest.raises(ValueError, match="`k`"):
        TopKAccuracy(0)
