"""progressive_regularization_search: the reference recipe's ladder,
table and choice."""

import numpy as np
import pytest

from keras_regkit.experiments.search import LADDER
from keras_regkit.experiments.search import build_search_mlp
from keras_regkit.experiments.search import format_table
from keras_regkit.experiments.search import progressive_regularization_search
from keras_regkit.experiments.search import select_best
from tests.helpers import random_batch


@pytest.fixture
def tiny():
    """128 training and 64 validation images: whole batches of 64 only."""
    x, y = random_batch(192)
    return x[:128], y[:128], x[128:], y[128:]


def test_the_ladder_is_the_seeds():
    assert [(c["name"], c["l2"], c["dropout"]) for c in LADDER] == [
        ("No regularization", 0.0, 0.0), ("Light", 1e-5, 0.1),
        ("Moderate", 1e-4, 0.3), ("Heavy", 1e-3, 0.5),
        ("Very heavy", 1e-2, 0.6)]


def test_search_mlp_layers():
    model = build_search_mlp((32, 32, 3), 10, l2=1e-3, dropout=0.5)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense", "Dropout",
                     "Dense"]
    dense = [layer for layer in model.layers if kinds and
             type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [256, 128, 10]
    assert dense[0].kernel_regularizer.l2 == pytest.approx(1e-3)
    assert dense[2].kernel_regularizer is None
    bare = build_search_mlp((32, 32, 3), 10, l2=0.0, dropout=0.0)
    assert [type(layer).__name__ for layer in bare.layers[1:]] == [
        "Flatten", "Dense", "Dense", "Dense"]


@pytest.mark.slow
def test_default_ladder_on_a_tiny_subset(tiny, capsys):
    result = progressive_regularization_search(
        *tiny, epochs=2, batch_size=64, hidden_units=(16, 8), seed=0,
        verbose=1)
    records = result["records"]
    assert [(r["name"], r["l2"], r["dropout"]) for r in records] == [
        (c["name"], c["l2"], c["dropout"]) for c in LADDER]
    for record in records:
        assert 0.0 <= record["val_acc"] <= 1.0
        assert 0.0 <= record["train_acc"] <= 1.0
        assert record["gap"] == pytest.approx(record["train_acc"]
                                              - record["val_acc"])
        assert 1 <= record["epochs"] <= 2 and record["time_s"] > 0
    # Nothing reaches 0.7 on 128 noise images with random labels: the
    # fallback picks the best val_acc.
    assert result["best"] is max(records, key=lambda r: r["val_acc"])
    assert result["selection"].startswith("highest val_acc")
    assert "* " + result["best"]["name"] in result["table"]
    out = capsys.readouterr().out
    assert "Train acc" in out and "Best: " in out


def test_one_hot_labels_work(tiny):
    x_train, y_train, x_val, y_val = tiny
    result = progressive_regularization_search(
        x_train, np.eye(10)[y_train], x_val, np.eye(10)[y_val],
        configs=[{"name": "light", "l2": 1e-5, "dropout": 0.1}], epochs=1,
        hidden_units=(8,), seed=0)
    assert len(result["records"]) == 1


def _record(name, train_acc, val_acc):
    return {"name": name, "l2": 0.0, "dropout": 0.0, "train_acc": train_acc,
            "val_acc": val_acc, "gap": train_acc - val_acc, "epochs": 3,
            "time_s": 1.0}


def test_best_is_the_smallest_gap_above_the_accuracy_floor():
    records = [_record("a", 0.99, 0.80), _record("b", 0.85, 0.78),
               _record("c", 0.70, 0.69), _record("d", 0.90, 0.75)]
    best, reason = select_best(records)
    assert best["name"] == "b"   # c has a smaller gap but val_acc <= 0.7
    assert reason.startswith("smallest gap")
    assert select_best(records, min_val_acc=0.79)[0]["name"] == "a"
    assert select_best(records, min_val_acc=0.9)[0]["name"] == "a"


def test_plain_text_table():
    records = [_record("none", 0.99, 0.80), _record("heavy", 0.85, 0.78)]
    lines = format_table(records, best=records[1]).splitlines()
    assert lines[0].split() == ["Config", "L2", "Dropout", "Train", "acc",
                                "Val", "acc", "Gap", "Epochs", "Time", "(s)"]
    assert lines[3].startswith("* heavy")
    assert "+0.1900" in lines[2] and "0.7800" in lines[3]


@pytest.mark.parametrize(
    "configs, name",
    [([], "configs"),
     ([{"name": "x", "l2": 0.0, "rate": 0.1}], "configs"),
     ([{"name": "x", "l2": -1.0, "dropout": 0.1}], "l2"),
     ([{"name": "x", "l2": 0.0, "dropout": 1.0}], "dropout")],
)
def test_invalid_configs_are_rejected(configs, name, tiny):
    with pytest.raises(ValueError, match=f"`{name}`"):
        progressive_regularization_search(*tiny, configs=configs, epochs=1)
