"""Every script in examples/ runs with `--quick` and reports its result.

Each example's `main(argv)` runs in this process (TensorFlow is imported
once for all of them), from a temporary folder, with `--quick` plus the
arguments below that shrink it further: the point is that every line of the
script runs and prints its closing words, not the accuracy it reaches.
They run in the TensorFlow and PyTorch passes (marker `compile_bound`): on
JAX, compiling their many small models took 85 s, a fifth of that pass's
test time.
"""

import importlib.util
from pathlib import Path

import keras
import pytest


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# A word each example prints only once it has finished its work, and the
# arguments that make it smaller than `--quick` alone.
EXPECTED = {
    "train_cifar10.py": ("Model saved to", ["--out", "out"]),
    "compose_layers.py": ("reloaded", [
        "--epochs", "1", "--mc-passes", "3", "--out", "out"]),
    "migrate_image_data_generator.py": ("accuracy", []),
    "detect_overfitting.py": ("Curves written to", [
        "--train-size", "200", "--epochs", "3", "--width", "128",
        "--plots"]),
    "dropout_vs_no_dropout.py": ("dropout", ["--epochs", "1"]),
    "multi_worker.py": ("written by this worker", ["--run-dir", "out"]),
    "uncertainty.py": ("calibration", [
        "--train-size", "200", "--val-size", "100", "--epochs", "1",
        "--n-iter", "4"]),
}


def test_every_example_has_an_expected_output():
    assert EXAMPLES, "no examples found"
    assert {p.name for p in EXAMPLES} <= set(EXPECTED)


def _load(script):
    spec = importlib.util.spec_from_file_location(
        f"example_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Examples that need TensorFlow itself: the others run in every pass.
NEEDS_TENSORFLOW = {
    "migrate_image_data_generator.py": "a tf.data pipeline",
    "multi_worker.py": "tf.distribute.MultiWorkerMirroredStrategy",
}


def _marks(script):
    if script.name in NEEDS_TENSORFLOW:
        return [pytest.mark.requires_tensorflow]
    return []


@pytest.mark.slow
@pytest.mark.compile_bound
@pytest.mark.parametrize("script", [
    pytest.param(p, marks=_marks(p), id=p.name) for p in EXAMPLES])
def test_example_runs_quick(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    words, extra = EXPECTED[script.name]
    try:
        _load(script).main(["--quick", *extra])
    finally:
        keras.backend.clear_session(free_memory=False)
        keras.config.set_dtype_policy("float32")
    out = capsys.readouterr().out
    assert words.lower() in out.lower(), out[-3000:]
