"""Loading CIFAR-10 offline: local copies, the Keras cache, a bundled sample.

`load_cifar10` returns the arrays `keras.datasets.cifar10.load_data()`
returns, but reads them from wherever a copy already is (it never needs the
network), and caches the decoded arrays so the second load is fast.
`load_cifar10_sample` returns a small stratified sample shipped inside the
package, for examples and smoke tests.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import warnings
from pathlib import Path
from typing import TypeAlias

import numpy as np

from keras_regkit._atomic import atomic_path
from keras_regkit._validation import check_seed
from keras_regkit.data import _formats
from keras_regkit.data._formats import CLASS_NAMES
from keras_regkit.data._formats import Split

# `(train, test, has_test)`: what the readers and the cache hold.
Splits: TypeAlias = tuple[Split, Split, bool]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = (
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
)
SAMPLE_PATH = Path(__file__).resolve().parent / (
    "cifar10_sample.tar.gz"
)
DATA_DIR_ENV = "KERAS_REGKIT_DATA"
_CACHE_VERSION = "1"
# Names a copy may have inside a folder, in the order they are tried.
_FOLDER_CANDIDATES = (
    "cifar-10-batches-py-target/cifar-10-batches-py",  # Keras >= 3.6 cache
    "cifar-10-batches-py",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py.tar.gz",  # Keras 2 cache
    "cifar-10-batches-py-target_archive",
    "cifar10_train_jpeg.tar.gz",
)
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", "_archive")


def keras_datasets_dirs() -> list[Path]:
    """The folders Keras downloads datasets into (`$KERAS_HOME/datasets`)."""
    home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    dirs = [Path(home).expanduser() / "datasets"]
    dirs.append(Path(tempfile.gettempdir()) / ".keras" / "datasets")
    return dirs


def _is_source(path: Path) -> bool:
    """True if `path` is a folder or archive that `_read` can read."""
    if path.is_file():
        return path.name.endswith(_ARCHIVE_SUFFIXES)
    return path.is_dir() and (
        (path / "data_batch_1").is_file() or (path / "train").is_dir()
    )


def _candidates(folder: Path) -> list[Path]:
    """The places inside `folder` where a copy may be, in search order."""
    places = [folder] + [folder / name for name in _FOLDER_CANDIDATES]
    places += sorted(folder.glob("cifar*.tar.gz")) if folder.is_dir() else []
    return list(dict.fromkeys(places))


def _find_source(
    data_dir: os.PathLike[str] | str | None,
) -> tuple[Path | None, list[Path]]:
    """Returns `(source, looked_at)`: the first readable copy, or None."""
    if data_dir is not None:
        folders = [Path(data_dir).expanduser()]
        if folders[0].is_file():
            return folders[0], [folders[0]]
    else:
        folders = keras_datasets_dirs()
        if os.environ.get(DATA_DIR_ENV):
            folders.insert(0, Path(os.environ[DATA_DIR_ENV]).expanduser())
    looked_at: list[Path] = []
    for folder in folders:
        for place in _candidates(folder):
            looked_at.append(place)
            if _is_source(place):
                return place, looked_at
    return None, looked_at


def _download() -> Path:
    """Downloads the official archive into the Keras cache (`get_file`)."""
    import keras

    return Path(keras.utils.get_file(
        fname="cifar-10-python.tar.gz", origin=CIFAR10_URL,
        file_hash=CIFAR10_SHA256,
    ))


def _source_key(source: Path, shuffle_seed: int | None) -> str:
    """A cache key from the source's path, sizes and modification times."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{shuffle_seed}".encode())
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file()
    )
    for file in files:
        stat = file.stat()
        digest.update(f"|{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
                      .encode())
    return digest.hexdigest()[:24]


def _default_cache_dir() -> Path:
    return keras_datasets_dirs()[0] / "keras_regkit_cache"


def _load_cached(path: Path) -> Splits | None:
    try:
        with np.load(path) as data:
            arrays = [data[k] for k in ("x_train", "y_train", "x_test",
                                        "y_test", "has_test")]
    except (OSError, ValueError, KeyError) as error:
        warnings.warn(f"Ignoring the unreadable cache {path}: {error}",
                      stacklevel=3)
        return None
    return (arrays[0], arrays[1]), (arrays[2], arrays[3]), bool(arrays[4])


def _save_cached(path: Path, splits: Splits) -> None:
    (x_train, y_train), (x_test, y_test), has_test = splits
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test,
                     y_test=y_test, has_test=has_test)
    except OSError as error:
        warnings.warn(f"Could not write the cache {path}: {error}",
                      stacklevel=3)


def _decode(source: Path) -> tuple[Splits, str]:
    """`(splits, layout)` of an archive or folder, in the order it lists."""
    read = _formats.read_archive if source.is_file() else _formats.read_folder
    try:
        train, test, has_test, layout = read(str(source))
    except tarfile.TarError as error:
        raise ValueError(f"{source} is not a readable tar archive: {error}")
    return (train, test, has_test), layout


def _shuffled(splits: Splits, layout: str,
              shuffle_seed: int | None) -> Splits:
    (x_train, y_train), (x_test, y_test), has_test = splits
    if layout == "tree" and shuffle_seed is not None:
        # Trees list images class by class; a fixed shuffle keeps any slice
        # (e.g. the last 10% used for validation) class-balanced.
        rng = np.random.default_rng(shuffle_seed)
        order = rng.permutation(len(x_train))
        x_train, y_train = x_train[order], y_train[order]
        order = rng.permutation(len(x_test))
        x_test, y_test = x_test[order], y_test[order]
    return (x_train, y_train), (x_test, y_test), has_test


def _read(source: Path, shuffle_seed: int | None) -> Splits:
    return _shuffled(*_decode(source), shuffle_seed)


# The embedded sample, decoded by the first `load_cifar10_sample` call of
# the process: `{(mtime_ns, size) of the file: (splits, layout)}`.
_SAMPLE_DECODED: dict[tuple[int, int], tuple[Splits, str]] = {}


def _sample_splits(shuffle_seed: int | None) -> Splits:
    stat = SAMPLE_PATH.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    if key not in _SAMPLE_DECODED:
        _SAMPLE_DECODED.clear()  # the file changed: forget the old one
        _SAMPLE_DECODED[key] = _decode(SAMPLE_PATH)
    splits, layout = _SAMPLE_DECODED[key]
    (x_train, y_train), (x_test, y_test), has_test = _shuffled(
        splits, layout, shuffle_seed)
    # Fresh arrays on every call: a caller may change what it is given.
    return ((x_train.copy(), y_train.copy()), (x_test.copy(), y_test.copy()),
            has_test)


def _finish(splits: Splits, source: Path) -> tuple[Split, Split]:
    (x_train, y_train), (x_test, y_test), has_test = splits
    if not has_test:
        warnings.warn(
            f"{source} has no test split (no test/ or val/ folder): x_test "
            "and y_test are empty. Hold out part of the training split for "
            "validation and say so when reporting accuracy.",
            stacklevel=3,
        )
    return (x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))


def load_cifar10(
    data_dir: os.PathLike[str] | str | None = None,
    cache_dir: os.PathLike[str] | str | None = None,
    allow_download: bool = False, cache: bool = True,
    shuffle_seed: int | None = 0,
) -> tuple[Split, Split]:
    """Loads CIFAR-10 from a local copy, like `keras.datasets.cifar10`.

    Reads the canonical pickled release (the `cifar-10-batches-py` folder or
    `cifar-10-python.tar.gz`) or a folder-per-class image tree
    (`train/<class>/*.jpg` with optional `test/` or `val/`, as a folder or a
    `.tar.gz`). Pickled batches are read with an unpickler that can build
    only NumPy arrays, and archives are read in memory after refusing any
    member that would escape the archive. Decoded arrays are cached as an
    `.npz` file keyed by the source's path, size and modification time.

    Args:
        data_dir: a folder holding a copy (or a copy's folder or archive
            itself). If `None`, looks in `$KERAS_REGKIT_DATA` and in the
            Keras download cache (`~/.keras/datasets`, where
            `keras.datasets.cifar10.load_data()` leaves its copy). Defaults
            to `None`.
        cache_dir: folder for the decoded-array cache. Defaults to `None`
            (`~/.keras/datasets/keras_regkit_cache`).
        allow_download: if no copy is found, download the official archive
            into the Keras cache with `keras.utils.get_file` (a failure is
            reported with the places searched). Defaults to `False`.
        cache: read and write the decoded-array cache. Defaults to `True`.
        shuffle_seed: image trees list their images class by class; they are
            returned in a fixed random order drawn with this seed, so any
            slice is class-balanced. `None` keeps the class-by-class order.
            The pickled release keeps its own order. Defaults to `0`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images of shape
        (N, 32, 32, 3) and uint8 labels of shape (N, 1) in the canonical
        class order (airplane, automobile, bird, cat, deer, dog, frog, horse,
        ship, truck), exactly as `keras.datasets.cifar10.load_data()`. A tree
        without a test split gives empty test arrays (0, 32, 32, 3) and
        (0, 1), with a warning.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_cifar10("../shared/data")
    ```
    """
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise FileNotFoundError(
            f"`data_dir` does not exist. Received: data_dir={str(data_dir)!r}"
        )
    shuffle_seed = check_seed("shuffle_seed", shuffle_seed)
    source, looked_at = _find_source(data_dir)
    download_error: Exception | None = None
    if source is None and allow_download:
        try:
            source = _download()
        except Exception as error:  # offline, blocked, bad hash...
            download_error = error
    if source is None:
        places = "\n".join(f"  - {p}" for p in looked_at)
        extra = (f"\nThe download failed: {download_error}"
                 if download_error else
                 "\nNo download was tried (allow_download=False).")
        raise FileNotFoundError(
            "No CIFAR-10 copy found. Looked at:\n" + places + extra +
            "\nPoint `data_dir` at a folder holding `cifar-10-batches-py`, "
            "`cifar-10-python.tar.gz` or a train/<class>/ image tree (or its "
            ".tar.gz), e.g. load_cifar10(data_dir='/path/to/data'), or set "
            f"${DATA_DIR_ENV}."
        )
    cache_file = None
    if cache:
        folder = Path(cache_dir).expanduser() if cache_dir else (
            _default_cache_dir())
        key = _source_key(source, shuffle_seed)
        cache_file = folder / f"cifar10-{key}.npz"
        splits = _load_cached(cache_file) if cache_file.exists() else None
        if splits is not None:
            return _finish(splits, source)
    splits = _read(source, shuffle_seed)
    if cache_file is not None:
        _save_cached(cache_file, splits)
    return _finish(splits, source)


def load_cifar10_sample(shuffle_seed: int | None = 0) -> tuple[Split, Split]:
    """Loads the small CIFAR-10 sample shipped inside the package.

    2,000 training and 500 validation images (200 and 50 per class) drawn
    stratified, with a fixed seed, from the official training split; the
    original JPEG files are stored unchanged (`tools/make_sample.py` builds
    the archive). Use it for examples, tutorials and smoke tests, not to
    report accuracy.

    The images are decoded by the first call in a process (about 0.3 s)
    and kept; later calls return copies, in the order `shuffle_seed` asks.

    Args:
        shuffle_seed: seed of the fixed order the images are returned in
            (`None`: class by class). Defaults to `0`.

    Returns:
        `(x_train, y_train), (x_val, y_val)`: uint8 images (N, 32, 32, 3) and
        uint8 labels (N, 1).

    Example:

    ```python
    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    ```
    """
    shuffle_seed = check_seed("shuffle_seed", shuffle_seed)
    if not SAMPLE_PATH.is_file():
        raise FileNotFoundError(
            f"The embedded sample {SAMPLE_PATH} is missing from this "
            "installation; reinstall keras_regkit."
        )
    return _finish(_sample_splits(shuffle_seed), SAMPLE_PATH)


__all__ = ["CLASS_NAMES", "load_cifar10", "load_cifar10_sample"]
