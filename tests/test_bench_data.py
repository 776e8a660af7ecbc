"""The benchmark's data splits (bench/time_to_accuracy.py)."""

import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import PER_BATCH
from tests.helpers import REPO_ROOT
from tests.helpers import write_cifar_batches

BENCH = REPO_ROOT / "bench"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the decode cache
    monkeypatch.syspath_prepend(str(BENCH))
    import time_to_accuracy

    return time_to_accuracy


def test_test_split_trains_on_every_training_image(bench, tmp_path,
                                                   cifar10_small):
    x, y = cifar10_small
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", x, y)
    x_train, y_train, x_eval, y_eval = bench.benchmark_data(folder, "test")
    n = 5 * PER_BATCH
    np.testing.assert_array_equal(x_train, x[:n])
    np.testing.assert_array_equal(y_train, y[:n])
    np.testing.assert_array_equal(x_eval, x[n:n + PER_BATCH])
    assert y_eval.shape == (PER_BATCH,)
    # The default holds out the last tenth of a seeded shuffle instead.
    parts = bench.benchmark_data(folder, "validation", limit=n)
    assert [len(p) for p in parts] == [90, 90, 10, 10]
    seen = np.concatenate([parts[0], parts[2]]).reshape(n, -1)
    assert len(np.unique(seen, axis=0)) == len(np.unique(x[:n].reshape(
        n, -1), axis=0))


def test_test_split_of_a_source_without_one_names_the_fix(bench, tmp_path):
    tree = tmp_path / "tree" / "train"
    rng = np.random.default_rng(0)
    for name in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                 "frog", "horse", "ship", "truck"):
        (tree / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(
            tree / name / "0000.png")
    with pytest.warns(UserWarning, match="no test split"):
        with pytest.raises(ValueError, match="--split test needs a source "
                                             "with a test split"):
            bench.benchmark_data(tree.parent, "test")
    with pytest.raises(ValueError, match="'validation' or 'test'. "
                                         "Received: split='val'"):
        bench.benchmark_data(tree.parent, "val")


@pytest.mark.backend_independent  # it stops before any Keras work
def test_the_command_line_rejects_it_before_training(bench, tmp_path,
                                                     monkeypatch, capsys):
    tree = tmp_path / "tree" / "train" / "cat"
    tree.mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tree / "0.png")
    monkeypatch.setattr(sys, "argv", [
        "time_to_accuracy.py", "--capacity", "fast", "--split", "test",
        "--data-dir", str(tree.parents[1])])
    with pytest.warns(UserWarning, match="no test split"):
        with pytest.raises(SystemExit) as stopped:
            bench.main()
    assert stopped.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert "--split test needs a source with a test split" in err
    assert "cifar-10-batches-py" in err
