"""The type checker runs clean over the package, with the configuration in
pyproject.toml ([tool.mypy]: every function annotated, bodies checked).

It runs once, in the TensorFlow pass: mypy reads the source, it does not
import it, so its verdict cannot depend on the Keras backend.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def test_package_ships_its_type_marker():
    assert (ROOT / "keras_regkit" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject, "py.typed is not in package-data"


@pytest.mark.backend_independent
def test_mypy_is_clean_over_the_package():
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: pip install -e \".[test]\"")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"mypy found problems:\n{result.stdout[-6000:]}{result.stderr[-2000:]}")
