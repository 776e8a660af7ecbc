"""Type aliases shared by the package (for type checkers only).

Keras ships no type information, so its tensors are `Any` to mypy; the
alias names what a value is meant to be.
"""

import os
from typing import Any, TypeAlias

# A backend tensor, or anything `keras.ops` accepts (NumPy array, scalar).
Tensor: TypeAlias = Any

# A file-system path as `open` and `pathlib.Path` accept it.
StrPath: TypeAlias = str | os.PathLike[str]

# A tensor shape as Keras 3 passes it to `build` and `compute_output_shape`.
Shape: TypeAlias = tuple[int | None, ...]

# The `logs` a Keras callback method receives.
Logs: TypeAlias = dict[str, Any]
