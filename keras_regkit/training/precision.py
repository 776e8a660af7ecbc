"""Choosing the compute precision: float32 or mixed bfloat16 / float16.

Which precision trains faster on a CPU is measured, not assumed: bfloat16
is emulated (and several times slower) where the CPU lacks native BF16
instructions, but even AVX512_BF16 does not make every model faster. So on
a CPU `"auto"` times a few training steps of a small convolutional network
in float32 and in mixed bfloat16 (`measure_precisions`) and picks the
faster; where the bfloat16 step cannot run at all, float32. The result
is kept in a small JSON file per machine, Keras backend and version, and
setting of the kernel variables (`ONEDNN_MAX_CPU_ISA` and the like; under
`$XDG_CACHE_HOME/keras_regkit`, or `~/.cache/keras_regkit`), so the probe,
a few seconds, runs once. With a GPU, `"auto"` picks mixed bfloat16.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

from keras_regkit._atomic import atomic_write_json
from keras_regkit._choices import PRECISIONS
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_int

_log = logging.getLogger("keras_regkit")


def cpu_has_native_bf16(
        cpuinfo_path: os.PathLike[str] | str = "/proc/cpuinfo") -> bool:
    """Whether the CPU advertises AVX512_BF16 or AMX-BF16 instructions."""
    try:
        text = Path(cpuinfo_path).read_text()
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _cpu_identity(cpuinfo_path: os.PathLike[str] | str = "/proc/cpuinfo",
                  ) -> str:
    """The CPU model and a digest of its flags (the probe's cache key)."""
    model, flags = "unknown CPU", ""
    try:
        for line in Path(cpuinfo_path).read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[-1].strip()
            if line.startswith("flags") and not flags:
                flags = " ".join(sorted(line.split(":", 1)[-1].split()))
    except OSError:
        pass
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{model} (flags {digest})"


def measure_precisions(batch_size: int = 64, steps: int = 3,
                       ) -> dict[str, float]:
    """Seconds per training step in float32 and in mixed bfloat16, here.

    Builds the same small convolutional network (two 64-filter and one
    128-filter 3x3 convolutions with batch normalization, on 32x32x3
    images) under each precision, compiles it with SGD, runs two warm-up
    steps, then times `steps` training steps and keeps the fastest. On the
    CPU this takes a few seconds.

    Args:
        batch_size: images per step, >= 1. Defaults to `64`.
        steps: timed steps per precision, >= 1. Defaults to `3`.

    Returns:
        `{"float32": seconds, "mixed_bfloat16": seconds}`. Where the
        mixed bfloat16 step cannot run at all (a kernel library held to an
        instruction set without BF16, e.g. `ONEDNN_MAX_CPU_ISA=AVX2` on a
        CPU whose TensorFlow picked oneDNN's BF16 kernels), its time is
        `math.inf` and a warning gives the error, so `"auto"` picks
        float32. A float32 failure is raised.

    Example:

    >>> seconds = measure_precisions(batch_size=4, steps=1)
    >>> sorted(seconds), all(s > 0 for s in seconds.values())
    (['float32', 'mixed_bfloat16'], True)
    """
    import numpy as np

    batch_size = check_int("batch_size", batch_size, 1)
    steps = check_int("steps", steps, 1)
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, batch_size)
    seconds = {}
    for name in ("float32", "mixed_bfloat16"):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(name)
        try:
            conv = [keras.layers.Conv2D(f, 3, padding="same", use_bias=False)
                    for f in (64, 64, 128)]
            model = keras.Sequential([
                keras.Input((32, 32, 3)),
                conv[0], keras.layers.BatchNormalization(), keras.layers.ReLU(),
                conv[1], keras.layers.BatchNormalization(), keras.layers.ReLU(),
                keras.layers.MaxPooling2D(),
                conv[2], keras.layers.BatchNormalization(), keras.layers.ReLU(),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10, dtype="float32"),
            ])
        finally:
            keras.config.set_dtype_policy(previous)
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True), jit_compile=False)
        try:
            seconds[name] = _time_steps(model, x, y, steps)
        except Exception as error:  # noqa: BLE001 - any backend's kernel error
            if name == "float32":
                raise
            _log.warning("precision probe: a %s training step failed on "
                         "this machine, so it counts as unusable: %s: %s",
                         name, type(error).__name__, _error_words(error))
            seconds[name] = math.inf
    return seconds


def _time_steps(model: keras.Model, x: Any, y: Any, steps: int) -> float:
    """The fastest of `steps` training steps, after two warm-up steps."""
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(model.train_on_batch(x, y))
        times.append(time.perf_counter() - start)
    return min(times)


def _cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return Path(root) / "keras_regkit" / "precision.json"


_MEASURED: dict[str, dict[str, float]] = {}
# Environment variables that change which kernels run, so which precision
# is faster (or can run at all): each setting gets its own cache entry.
_KERNEL_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                     "TF_ENABLE_ONEDNN_OPTS", "ATEN_CPU_CAPABILITY")


def _kernel_settings() -> str:
    """`, with NAME=VALUE ...` for each kernel variable set, else `""`."""
    settings = [f"{name}={os.environ[name]}" for name in _KERNEL_VARIABLES
                if os.environ.get(name)]
    return f", with {' '.join(settings)}" if settings else ""


def _error_words(error: BaseException) -> str:
    """The informative line of a (possibly many-line) backend error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "message:" in line:  # oneDNN's status line inside TF's text
            return line.split("message:", 1)[1].strip()[:300]
    return (lines[-1] if lines else "")[:300]


def measured_precisions() -> tuple[dict[str, float], str]:
    """`measure_precisions()` for this machine, from the cache if there.

    Returns `(seconds, where)`: the timings and whether they were just
    measured or read from the cache file. An unreadable cache is measured
    again and rewritten; one that cannot be written is only logged.
    """
    key = (f"{_cpu_identity()}, keras {keras.__version__} on "
           f"{keras.backend.backend()}{_kernel_settings()}")
    if key in _MEASURED:
        return _MEASURED[key], "measured earlier in this process"
    path = _cache_path()
    entries: dict[str, dict[str, float]] = {}
    try:
        entries = json.loads(path.read_text())
        # An unusable precision is stored as "inf" (JSON has no infinity).
        seconds = {name: float(s) for name, s in entries[key].items()
                   if isinstance(s, (float, str))}
        if sorted(seconds) == ["float32", "mixed_bfloat16"] and all(
                s > 0 for s in seconds.values()) and math.isfinite(
                seconds["float32"]):
            _MEASURED[key] = seconds
            return seconds, f"measured earlier, cached in {path}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if not isinstance(entries, dict):
        entries = {}
    seconds = measure_precisions()
    _MEASURED[key] = seconds
    entries[key] = seconds
    try:
        atomic_write_json(path, entries)
    except OSError as error:
        _log.info("could not cache the precision probe in %s: %s", path,
                  error)
    return seconds, "just measured"


def _has_gpu() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        return False


class Precision:
    """A resolved precision choice.

    Attributes:
        name: the Keras dtype-policy name actually used.
        requested: what the user asked for.
        reason: why `"auto"` chose it (empty otherwise).
    """

    def __init__(self, name: str, requested: str, reason: str = "") -> None:
        self.name, self.requested, self.reason = name, requested, reason

    @contextlib.contextmanager
    def policy_scope(self) -> Iterator[None]:
        """Sets the global Keras dtype policy while a model is built."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.name)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, requested={self.requested!r})"


def resolve_precision(precision: str | Precision) -> Precision:
    """Resolves a precision name (see `PRECISIONS`) to a `Precision`.

    `"auto"` picks mixed bfloat16 where a GPU is present; on a CPU it picks
    whichever of float32 and mixed bfloat16 `measure_precisions` found
    faster on this machine (measured once, then cached), and `reason` gives
    both timings.
    """
    if isinstance(precision, Precision):
        return precision
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return Precision(precision, precision)
    if _has_gpu():
        choice, why = "mixed_bfloat16", "a GPU is present"
    else:
        seconds, where = measured_precisions()
        choice = min(seconds, key=seconds.__getitem__)
        native = ("with" if cpu_has_native_bf16() else "without")
        if math.isinf(seconds["mixed_bfloat16"]):
            why = (f"mixed_bfloat16 could not train on this CPU ({native} "
                   f"native BF16; {where}): float32 "
                   f"{seconds['float32'] * 1e3:.1f} ms/step")
        else:
            why = (f"it trained faster on this CPU ({native} native BF16): "
                   f"float32 {seconds['float32'] * 1e3:.1f} ms/step, "
                   f"mixed_bfloat16 {seconds['mixed_bfloat16'] * 1e3:.1f} "
                   f"ms/step ({where})")
    _log.info("precision='auto' chose %s because %s", choice, why)
    return Precision(choice, "auto", why)
