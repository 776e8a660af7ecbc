"""Every script in examples/ runs with `--quick` and reports its result."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# A word each example prints only once it has finished its work.
EXPECTED = {
    "train_cifar10.py": "Model saved to",
    "compose_layers.py": "reloaded",
    "migrate_image_data_generator.py": "accuracy",
    "detect_overfitting.py": "Overfitting",
    "dropout_vs_no_dropout.py": "dropout",
    "uncertainty.py": "calibration",
}


def test_every_example_has_an_expected_output():
    assert EXAMPLES, "no examples found"
    assert {p.name for p in EXAMPLES} <= set(EXPECTED)


@pytest.mark.requires_tensorflow  # the examples train through tf.data
@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_quick(script, tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script.name].lower() in result.stdout.lower()
