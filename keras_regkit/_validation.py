"""Argument checks shared by every public constructor.

Messages follow Keras's form: "Invalid value received for argument `rate`.
Expected a float in [0, 1). Received: rate=1.5".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any, TypeVar

_V = TypeVar("_V")


def invalid(name: str, value: object, expected: str,
            error: type[Exception] = ValueError) -> Exception:
    """Returns (does not raise) the error for a bad argument value."""
    return error(
        f"Invalid value received for argument `{name}`. "
        f"Expected {expected}. Received: {name}={value!r}"
    )


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_float(name: str, value: Any, low: float | None = None,
                high: float | None = None, low_inclusive: bool = True,
                high_inclusive: bool = False) -> float:
    """Checks that `value` is a finite real number in the given interval.

    Returns the value as a Python float.
    """
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    expected = f"a float in {left}{lo}, {hi}{right}"
    if not _is_real(value) or not math.isfinite(float(value)):
        raise invalid(name, value, expected)
    value = float(value)
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise invalid(name, value, expected)
    if high is not None and (
        value > high or (value == high and not high_inclusive)
    ):
        raise invalid(name, value, expected)
    return value


def check_rate(name: str, value: Any) -> float:
    """Checks a drop probability in [0, 1)."""
    return check_float(name, value, 0.0, 1.0)


def check_positive(name: str, value: Any) -> float:
    """Checks a strictly positive finite float."""
    return check_float(name, value, 0.0, None, low_inclusive=False)


def check_non_negative(name: str, value: Any) -> float:
    """Checks a non-negative finite float."""
    return check_float(name, value, 0.0, None)


def check_int(name: str, value: Any, low: int | None = None,
              high: int | None = None) -> int:
    """Checks an integer in [low, high] (bounds optional)."""
    lo = "-inf" if low is None else str(low)
    hi = "inf" if high is None else str(high)
    expected = f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(name, value, expected)
    number = int(value)
    if (low is not None and number < low) or (
        high is not None and number > high
    ):
        raise invalid(name, value, expected)
    return number


def check_seed(name: str, value: Any) -> int | None:
    """Checks an optional integer seed."""
    if value is None:
        return None
    return check_int(name, value, 0, None)


def check_choice(name: str, value: _V, choices: Collection[Any]) -> _V:
    """Checks that `value` is one of `choices`."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise invalid(name, value, f"one of {allowed}")
    return value
