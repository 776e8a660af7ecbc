"""The one walk over a model's layers."""

from __future__ import annotations

from collections.abc import Iterator

import keras


def walk_layers(layer: keras.layers.Layer, wrapped: bool = True,
                containers: bool = True) -> Iterator[keras.layers.Layer]:
    """Yields `layer` and every layer nested in it, depth first, once each.

    Nested models (Sequential or Functional) are entered; so are wrappers
    (`keras.layers.Wrapper` subclasses such as `DropConnect`, whose `layer`
    is the wrapped layer) when `wrapped` is True.

    Args:
        layer: a Keras model or layer.
        wrapped: also yield the layers that wrappers hold. Defaults to
            `True`.
        containers: also yield the models themselves (`layer` included when
            it is a model); False yields only the layers inside them.
            Defaults to `True`.

    Example:

    >>> inner = keras.Sequential([keras.layers.Dense(2)])
    >>> model = keras.Sequential([keras.Input((3,)), inner])
    >>> [type(l).__name__ for l in walk_layers(model)]
    ['Sequential', 'Sequential', 'Dense']
    """
    seen: set[int] = set()
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        nested = list(getattr(current, "layers", None) or [])
        is_container = isinstance(current, keras.Model) or bool(nested)
        if containers or not is_container:
            yield current
        inner = getattr(current, "layer", None)
        if wrapped and isinstance(inner, keras.layers.Layer):
            nested.append(inner)
        stack.extend(reversed(nested))
