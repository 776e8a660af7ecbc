"""Shared fixtures (real CIFAR-10 images, seeding) and the backend markers.

Markers (declared in pyproject.toml):

- `requires_tensorflow`: skipped, with the reason, unless KERAS_BACKEND is
  `tensorflow` (tf.data, tf.distribute, TensorFlow-only APIs).
- `backend_independent`: a slow test that touches no Keras backend (file
  formats, NumPy); it runs once, in the TensorFlow pass.
- `tensorflow_pass`: runs in the TensorFlow pass only, though it would run
  anywhere: it repeats code that the unit tests run on every backend (the
  docstring examples), so a second pass would add time, not coverage.
  `REGKIT_EVERY_PASS=1` runs them on every backend.
- `compile_bound`: builds many one-off models (the examples), so on JAX
  nearly all its time is XLA compilation (85 s of the JAX pass for the
  examples, against 20 s on PyTorch). It runs in the TensorFlow and
  PyTorch passes; what it calls is unit-tested on JAX.
  `REGKIT_EVERY_PASS=1` runs it on JAX too.
- `all_backends`: starts its own subprocesses on TensorFlow, JAX and
  PyTorch; it runs once, in the TensorFlow pass.
- `requires_data`: reads the real CIFAR-10 archive in ../shared/data. Added
  automatically to every test that uses one of the data fixtures below.
  Without the data such a test is skipped with the reason; with the
  environment variable REGKIT_REQUIRE_DATA=1 (CI) it fails instead.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles every new shape and model the tests make (all of JAX, and
# jit_compile=True on TensorFlow); for tensors this small its CPU backend's
# optimization passes cost far more than they save: level 0 halves the JAX
# pass. XLA's newer fusion emitters (MLIR) take more than twice as long to
# compile as the classic ones: turned off, XLA's compile time on the
# training tests fell from 31 s to 14 s, and the files' time from 93 s to
# 72 s (one process); the whole JAX pass (two workers) took 187-191 s
# against 229-233 s with them (2 AVX512-BF16 cores, 2026-12-02). XLA also
# splits each program's machine-code generation into parts for threads to
# compile side by side, which for programs this small costs more than it
# saves, and the two workers already fill the cores: with one part the JAX
# pass took 196 + 10 and 199 + 11 CPU-s (user + system) against 207 + 13
# and 214 + 12, back to back (2 AMX Xeon cores, 2026-12-03). These change
# how fast the compiled code runs and at most the float32 rounding of what
# it computes, which every tolerance allows for. Set before Keras starts a
# backend (subprocesses that tests start inherit it); an XLA_FLAGS already
# set is kept as it is.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                      "--xla_cpu_use_fusion_emitters=false "
                      "--xla_cpu_parallel_codegen_split_count=1")

# Keras (and through it the backend) is imported inside the hooks and
# fixtures, not here: under xdist the controlling process loads this file
# too, and it never runs a test, so importing a backend there only delayed
# the workers' start (2-3 s a pass).

DATA_FIXTURES = ("cifar10_archive", "cifar10_small", "cifar10_batch")
ARCHIVE_NAME = "cifar10_train_jpeg.tar.gz"


def _archive_path():
    from tests.helpers import shared_data_dir

    return shared_data_dir() / ARCHIVE_NAME


def _data_missing_reason():
    path = _archive_path()
    if path.exists():
        return None
    return (
        f"real CIFAR-10 data not found at {path}: place the shared/ folder "
        "beside the repository or set REGKIT_SHARED_DATA"
    )


def _data_required():
    return os.environ.get("REGKIT_REQUIRE_DATA", "") not in ("", "0")


# The files whose tests took longest, longest first (seconds summed over a
# file's tests in the TensorFlow pass of a clean CI run, or in the JAX pass
# where that was longer; 2 AVX2 cores). tests/run_all.py runs two workers
# with `--dist loadfile --no-loadscope-reorder`, which hands out whole files
# in collection order; these go first so that no long file starts last and
# keeps one worker busy while the other idles (the longest-first rule).
# The files whose tests start their own processes (test_resume,
# test_saving, test_workers) are spaced out so that each meets a file that
# trains in-process on the other worker: run side by side, they fought for
# the 2 cores (test_workers then took 63 s instead of 21 s, on Zen 5).
# The rest follow in collection order. A stale entry costs balance, never
# a result.
LONGEST_FIRST = (
    "analysis/test_uncertainty.py",
    "training/test_resume.py",
    "training/test_builder.py",
    "test_examples.py",
    "test_saving.py",
    "callbacks/test_overfitting_detector.py",
    "training/test_workers.py",
    "test_wheel.py",
    "data/test_device_loader.py",
    "test_properties.py",
    "callbacks/test_regularization_scheduler.py",
    "callbacks/test_lookahead.py",
    "test_docs.py",
    "experiments/test_search.py",
    "test_doctests.py",
    "experiments/test_tuner.py",
    "test_optimizers.py",
    "cli/test_train.py",
    "data/test_cifar10.py",
    "experiments/test_compare.py",
    "test_typing.py",
    "training/test_builder_distributed.py",
)


def _longest_first(items):
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    rank = {os.path.join(tests_dir, name): i
            for i, name in enumerate(LONGEST_FIRST)}
    missing = [name for name in rank if not os.path.isfile(name)]
    if missing:  # a file was renamed or removed: keep the list true
        raise pytest.UsageError(f"LONGEST_FIRST in tests/conftest.py names "
                                f"files that do not exist: {missing}")
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))


def pytest_collection_modifyitems(config, items):
    import keras

    _longest_first(items)  # a stable sort: order within a file is kept
    backend = keras.backend.backend()
    tf_skip = pytest.mark.skip(
        reason="needs TensorFlow itself (its backend, tf.data or "
        f"tf.distribute); this pass runs KERAS_BACKEND={backend}"
    )
    once_skip = pytest.mark.skip(
        reason="uses no Keras backend (files, NumPy, PIL): its result "
        "cannot depend on the backend, so it runs once, in the TensorFlow "
        "pass"
    )
    for item in items:
        if any(name in item.fixturenames for name in DATA_FIXTURES):
            item.add_marker(pytest.mark.requires_data)
        if backend != "tensorflow" and item.get_closest_marker(
            "requires_tensorflow"
        ):
            item.add_marker(tf_skip)
        elif backend != "tensorflow" and item.get_closest_marker(
            "backend_independent"
        ):
            item.add_marker(once_skip)
        elif (backend != "tensorflow"
              and item.get_closest_marker("tensorflow_pass")
              and os.environ.get("REGKIT_EVERY_PASS") != "1"):
            item.add_marker(pytest.mark.skip(
                reason="repeats code the unit tests run on every backend: "
                "runs once, in the TensorFlow pass"))
        elif (backend == "jax"
              and item.get_closest_marker("compile_bound")
              and os.environ.get("REGKIT_EVERY_PASS") != "1"):
            item.add_marker(pytest.mark.skip(
                reason="builds many one-off models, so on JAX its time is "
                "XLA compilation: runs in the TensorFlow and PyTorch passes "
                "(REGKIT_EVERY_PASS=1 runs it here too)"))
        elif backend != "tensorflow" and item.get_closest_marker(
            "all_backends"
        ):
            item.add_marker(pytest.mark.skip(
                reason="starts its own processes on every backend: runs "
                "once, in the TensorFlow pass"))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Ends an xdist worker at once, once its results are with the main process.

    By now the worker has sent every report and its `workerfinished`
    event (xdist does so in `pytest_sessionfinish`), and the other plugins
    have unconfigured. What is left is the interpreter's own shutdown: with
    a backend loaded and thousands of traced functions and compiled models
    to free, it took 2-3 s a pass, during which the main process waited
    (2 AMX Xeon cores). The main process writes the junit report and the
    summary, so it ends normally.
    """
    if hasattr(config, "workerinput"):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_data") is None:
        return
    reason = _data_missing_reason()
    if reason is None:
        return
    if _data_required():
        pytest.fail(f"REGKIT_REQUIRE_DATA=1 and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cifar10_archive():
    """Path of the real CIFAR-10 training split (JPEG, folder per class)."""
    reason = _data_missing_reason()
    if reason is not None:  # only a dynamic getfixturevalue gets here
        (pytest.fail if _data_required() else pytest.skip)(reason)
    return _archive_path()


@pytest.fixture(scope="session")
def cifar10_small(cifar10_archive):
    """1,000 real CIFAR-10 training images, 100 per class, interleaved.

    Returns `(x, y)`: `x` uint8 of shape (1000, 32, 32, 3), `y` int64 labels.
    The order is shuffled with a fixed seed so any prefix is class-balanced
    on average.
    """
    from tests.helpers import read_jpeg_subset

    x, y = read_jpeg_subset(cifar10_archive, per_class=100)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


@pytest.fixture(scope="session")
def cifar10_batch(cifar10_small):
    """64 real CIFAR-10 images scaled to [0, 1] float32, with int labels."""
    x, y = cifar10_small
    return x[:64].astype("float32") / 255.0, y[:64]


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(1234)
    yield
