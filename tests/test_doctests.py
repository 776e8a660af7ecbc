"""The `>>>` examples in keras_regkit's docstrings run, one test a module.

The examples are what the API reference shows (docs/api/), so each one
must run as written: every module under `keras_regkit` whose source holds a
`>>>` line is collected with the standard `doctest` module and run with
ELLIPSIS and NORMALIZE_WHITESPACE. The examples see the module's own
globals plus `keras` and `np`, the two names Keras's own docstrings take
for granted; anything else they use they define themselves.

They run once, in the TensorFlow pass (marker `tensorflow_pass`): most are
a layer called on a few numbers or a model with a handful of weights, and
what they call is unit-tested on every backend. They pass on JAX and
PyTorch too: `REGKIT_EVERY_PASS=1 KERAS_BACKEND=jax pytest
tests/test_doctests.py` runs them there (the modules in TENSORFLOW_ONLY need
tf.data and stay skipped). Examples that train do so on a few samples for
one or two epochs.
"""

import doctest
import importlib
import re
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_regkit"
# The `regkit` command's modules hold no examples and import heavy modules
# lazily inside each subcommand; they are left out on purpose.
EXCLUDED = ("keras_regkit.cli",)
# Modules whose examples need tf.data (or TensorFlow itself).
TENSORFLOW_ONLY = {
    "keras_regkit.training.builder",
}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
EXAMPLE_LINE = re.compile(r"^\s*>>> ", re.MULTILINE)
# A `>>>` line holding only a comment is no example to doctest.
CODE_LINE = re.compile(r"^\s*>>> +(?!#)\S", re.MULTILINE)


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules_with_examples():
    """Names of the package's modules whose source has a `>>>` line.

    Read from the files, not by importing them, so collecting the tests
    imports nothing of the package.
    """
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name.startswith(EXCLUDED):
            continue
        if EXAMPLE_LINE.search(path.read_text(encoding="utf-8")):
            names.append(name)
    return names


MODULES = modules_with_examples()


def _marks(name):
    return [pytest.mark.requires_tensorflow] if name in TENSORFLOW_ONLY else []


def test_the_collection_finds_the_examples():
    # A guard on the file scan above: the package has examples in dozens
    # of modules, and the tensorflow-only list names real modules.
    assert len(MODULES) >= 25, MODULES
    assert TENSORFLOW_ONLY <= set(MODULES)


# The layers, losses and callbacks these examples use are unit-tested on
# every backend; the examples themselves run once (about 35 s of the
# TensorFlow pass on 2 AVX2 cores, and 53 s and 25 s more when they also
# ran in the JAX and PyTorch passes).
@pytest.mark.tensorflow_pass
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=_marks(n), id=n) for n in MODULES])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(
        module, name, globs=dict(vars(module), keras=keras, np=np))
    tests = [t for t in tests if t.examples]
    source_count = len(CODE_LINE.findall(
        Path(module.__file__).read_text(encoding="utf-8")))
    found = sum(len(t.examples) for t in tests)
    # Every `>>>` line in the file belongs to an example doctest can see
    # (none hides in a comment or a nested function's docstring).
    assert found == source_count, (
        f"{name}: {source_count} `>>>` lines in the source, {found} "
        "examples collected")
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = []
    try:
        for test in sorted(tests, key=lambda t: t.lineno or 0):
            runner.run(test, out=report.append)
    finally:
        keras.backend.clear_session(free_memory=False)
    results = runner.summarize(verbose=False)
    assert not results.failed, "".join(report)
    assert results.attempted == found
