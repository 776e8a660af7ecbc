"""Choosing the compute precision: float32 or mixed bfloat16 / float16.

bfloat16 on a CPU without native BF16 instructions is emulated and can be
many times slower than float32, so `"auto"` picks bfloat16 only where the CPU
has AVX512_BF16 or AMX (or a GPU is present) and says which it chose.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import keras

from keras_regkit._choices import PRECISIONS
from keras_regkit._validation import check_choice

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
    """Resolves a precision name (see `PRECISIONS`) to a `Precision`."""
    if isinstance(precision, Precision):
        return precision
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return Precision(precision, precision)
    if _has_gpu():
        choice, why = "mixed_bfloat16", "a GPU is present"
    elif cpu_has_native_bf16():
        choice, why = "mixed_bfloat16", "the CPU has native BF16 (AVX512_BF16/AMX)"
    else:
        choice, why = "float32", "the CPU has no native BF16 instructions"
    _log.info("precision='auto' chose %s because %s", choice, why)
    return Precision(choice, "auto", why)
