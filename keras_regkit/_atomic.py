"""Atomic file writes: the one way keras_regkit puts a file on disk.

A write goes to a hidden temporary file in the destination's folder
(`.<name>.<random>.tmp`), which is flushed and fsync'ed, then renamed over
the destination with `os.replace`, and the folder is fsync'ed so that the
rename itself survives a power cut. A process killed at any moment leaves
either the previous complete file or the new complete file under the final
name, never a truncated one; a write that fails removes its temporary file
and re-raises. The temporary files a killed process leaves behind are found
by their name with `remove_temp_files`.

This module imports neither Keras nor TensorFlow, so every package of
keras_regkit (callbacks, data, models, analysis, training) can use it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from keras_regkit._typing import StrPath

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: StrPath, suffix: str = "") -> Iterator[str]:
    """Gives a temporary path that replaces `path` when the block succeeds.

    For writers that need a file name rather than a file object
    (`model.save`, `np.savez`, `save_weights`). The writer writes the
    temporary file and closes it; on leaving the block the file is fsync'ed
    and renamed over `path`, then the folder is fsync'ed. If the block
    raises, the temporary file is removed and the error re-raised. Missing
    parent folders are created.

    Args:
        path: the destination file.
        suffix: appended to the temporary name for writers that insist on
            an extension (`".keras"`, `".weights.h5"`, `".npz"`). Defaults
            to `""`.

    Yields:
        The temporary file's path, a `str`: `.<name>.<random>.tmp<suffix>`
        in `path`'s folder.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> with atomic_path("run/best_model.keras", suffix=".keras") as tmp:
    ...     model.save(tmp)
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.",
                               suffix=TEMP_SUFFIX + suffix)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> the usual mode
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: StrPath, write: Callable[[BinaryIO], object]) -> None:
    """Writes `path` atomically through `write(file)`.

    Args:
        path: the destination file.
        write: a callable given the temporary file, open for binary
            writing; it writes the content (it need not close or flush).

    Example:

    >>> from matplotlib.figure import Figure
    >>> figure = Figure()
    >>> atomic_write("curves.png", lambda f: figure.savefig(f, format="png"))
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()


def atomic_write_bytes(path: StrPath, data: bytes) -> None:
    """Writes `data` (bytes) to `path` atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: StrPath, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: StrPath, obj: Any) -> None:
    """Writes `obj` as indented, key-sorted JSON to `path` atomically.

    NumPy values become plain Python values and non-finite floats their
    string (see `json_ready`).
    """
    atomic_write_text(path, json.dumps(json_ready(obj), indent=2,
                                       sort_keys=True))


def remove_temp_files(folder: StrPath, names: Iterable[str]) -> list[Path]:
    """Removes the temporary files that killed writes of `names` left.

    Only hidden files whose name starts with `.NAME.` (this module's
    temporary files) or `.STEM.` (those of earlier versions, e.g.
    `.best_model.x81.keras`) are removed; other files, hidden or not, stay.

    Args:
        folder: the folder of the files.
        names: the final file names, e.g. `["history.csv"]`.

    Returns:
        The paths removed (a list of `Path`).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    prefixes = tuple({prefix for name in names
                      for prefix in (f".{name}.", f".{Path(name).stem}.")})
    for file in folder.iterdir():
        if file.is_file() and file.name.startswith(prefixes):
            file.unlink()
            removed.append(file)
    return removed


def json_ready(value: Any) -> Any:
    """`value` with NumPy scalars and arrays as plain Python values.

    Non-finite floats become their string (`"nan"`, `"inf"`), so the JSON
    stays standard.
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _fsync_file(path: StrPath) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: StrPath) -> None:
    """Makes a rename in `folder` durable (POSIX; Windows has no folder fd)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:  # file systems that cannot sync a folder
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
