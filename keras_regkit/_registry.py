"""The one serialization-registration helper and the per-family `get()`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import keras

_T = TypeVar("_T", bound=type)

PACKAGE = "keras_regkit"


def register(cls: _T) -> _T:
    """Registers `cls` for `.keras` saving under the `keras_regkit` package."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def snake_case(name: str) -> str:
    """Returns the snake_case form of a CamelCase class name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def make_getter(family: str,
                classes: Sequence[type]) -> Callable[[Any], Any]:
    """Builds a `get(identifier)` for one family of objects.

    The returned function accepts an instance (returned as is), a class name
    (`"ElasticNet"`), its snake_case form (`"elastic_net"`), or a Keras
    serialization dict, and raises `ValueError` naming the valid names
    otherwise.

    Args:
        family: the family's name used in error messages, e.g.
            `"regularizer"`.
        classes: the public classes of the family.
    """
    by_name: dict[str, type] = {}
    for cls in classes:
        by_name[cls.__name__] = cls
        by_name[snake_case(cls.__name__)] = cls
    base_types = tuple(classes)

    def get(identifier: Any) -> Any:
        if identifier is None:
            return None
        if isinstance(identifier, base_types):
            return identifier
        if isinstance(identifier, dict):
            return keras.saving.deserialize_keras_object(identifier)
        if isinstance(identifier, str) and identifier in by_name:
            return by_name[identifier]()
        valid = ", ".join(sorted(by_name))
        raise ValueError(
            f"Could not interpret {family} identifier: {identifier!r}. "
            f"Expected an instance or one of: {valid}."
        )

    get.__doc__ = f"Returns a keras_regkit {family} from a name or config."
    return get
