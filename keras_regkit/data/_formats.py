"""Readers for the CIFAR-10 file formats, with the safety checks they need.

Two layouts are understood, each as a folder or as a `.tar.gz` archive:

- the canonical pickled release (`cifar-10-batches-py`: `data_batch_1` ...
  `data_batch_5`, `test_batch`, optional `batches.meta`), read with an
  unpickler that can build nothing but NumPy arrays;
- a folder-per-class image tree (`train/<class>/*.jpg`, optional `test/` or
  `val/`), the layout `keras.utils.image_dataset_from_directory` reads.

Archives are read member by member in memory; nothing is written to disk, and
an archive with a member that would escape its root (an absolute path, a
`..` component, a link pointing outside, a device file) is refused before
any image is decoded.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import posixpath
import re
import tarfile
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
TEST_SPLITS = ("test", "val", "validation", "valid")
_IMAGE_SHAPE = (32, 32, 3)

# `(images, labels)`: uint8 (N, 32, 32, 3) and uint8 (N,).
Split: TypeAlias = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
# `(train, test, has_test, layout)` as the readers return them.
ReadResult: TypeAlias = tuple[Split, Split, bool, str]
# `(split, class, file)` of an image in a class tree.
TreeEntry: TypeAlias = tuple[str, str, str]



def _latin1_bytes(text: object, encoding: object) -> bytes:
    """`_codecs.encode` as protocol-2 pickles from Python 3 use it for bytes,
    restricted to that one use: Latin-1 text to bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("Refusing a non-Latin-1 `encode` call.")
    return text.encode("latin1")


# The only globals a CIFAR-10 batch (a dict of bytes, lists and one uint8
# array) may name: what NumPy needs to rebuild an array or a scalar, and
# the bytes constructor of Python 3 protocol-2 pickles.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("local", "_latin1_bytes"),
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name in ("_reconstruct", "scalar"):
        _ALLOWED_GLOBALS[(_module, _name)] = ("multiarray", _name)


def _multiarray() -> ModuleType:
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # NumPy 1.x
        return importlib.import_module("numpy.core.multiarray")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except NumPy's array helpers.

    A pickle runs code only through the globals it names (`find_class`), so
    refusing them all but `numpy.ndarray`, `numpy.dtype`, the
    `multiarray._reconstruct`/`scalar` helpers and a Latin-1-only stand-in
    for `_codecs.encode` means a crafted batch file
    fails before any of its payload runs.
    """

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"Refusing to load the global `{module}.{name}`: a CIFAR-10 "
                "batch holds only bytes, lists and NumPy arrays, so this "
                "file is not one (it may be malicious)."
            )
        if target[0] == "local":
            return _latin1_bytes
        owner = np if target[0] == "numpy" else _multiarray()
        return getattr(owner, target[1])


def unpickle_batch(data: bytes, source: str) -> Split:
    """Decodes one pickled batch (bytes) into `(images, labels)`.

    Args:
        data: the file's bytes.
        source: the file's name, used in error messages.

    Returns:
        `(x, y)`: uint8 images of shape (N, 32, 32, 3), uint8 labels (N,).
    """
    try:
        batch = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:
        raise ValueError(
            f"Could not read the CIFAR-10 batch {source}: {error}"
        ) from error
    if not isinstance(batch, dict):
        raise ValueError(f"{source} is not a CIFAR-10 batch (not a dict).")
    pixels = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError(f"{source}: `data` is not a uint8 array.")
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or labels is None:
        raise ValueError(
            f"{source}: expected `data` of shape (N, 3072) and `labels`; "
            f"got data of shape {pixels.shape}."
        )
    labels = np.asarray(labels)
    if labels.shape != (len(pixels),) or labels.dtype.kind not in "iu":
        raise ValueError(f"{source}: `labels` must be N integers.")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise ValueError(f"{source}: labels outside [0, 9].")
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def check_meta(data: bytes, source: str) -> None:
    """Checks that a `batches.meta` file names the CIFAR-10 classes."""
    try:
        meta = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:
        raise ValueError(f"Could not read {source}: {error}") from error
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    names = [n.decode() if isinstance(n, bytes) else n for n in names or ()]
    if tuple(names) != CLASS_NAMES:
        raise ValueError(
            f"{source} lists the classes {names}, not CIFAR-10's "
            f"{list(CLASS_NAMES)}."
        )


def read_batches(files: Mapping[str, bytes], source: str) -> ReadResult:
    """Builds the splits from `{name: bytes}` of a pickled release.

    Returns `((x_train, y_train), (x_test, y_test), True, "batches")`.
    """
    missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if n not in files]
    if missing:
        raise ValueError(
            f"{source} is incomplete: missing {', '.join(missing)}."
        )
    if META_FILE in files:
        check_meta(files[META_FILE], f"{source}/{META_FILE}")
    parts = [unpickle_batch(files[n], f"{source}/{n}") for n in TRAIN_BATCHES]
    x_test, y_test = unpickle_batch(files[TEST_BATCH],
                                    f"{source}/{TEST_BATCH}")
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return (x_train, y_train), (x_test, y_test), True, "batches"


def check_member(member: tarfile.TarInfo, source: str) -> None:
    """Raises `ValueError` if a tar member could escape the archive's root."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or (
        ".." in parts
    ):
        raise ValueError(
            f"Refusing to read {source}: member {name!r} has an absolute "
            "path or a '..' component (it would escape the archive)."
        )
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target.split("/")[0] == "..":
            raise ValueError(
                f"Refusing to read {source}: link {name!r} points outside "
                f"the archive ({member.linkname!r})."
            )
    elif not (member.isfile() or member.isdir()):
        raise ValueError(
            f"Refusing to read {source}: member {name!r} is a device or "
            "special file."
        )


def _natural_key(name: str) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def tree_entry(relative_path: str) -> TreeEntry | None:
    """`(split, class, file)` of an image path in a class tree, else None."""
    parts = relative_path.replace("\\", "/").split("/")
    if len(parts) < 3 or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    split = parts[-3].lower()
    if split != "train" and split not in TEST_SPLITS:
        return None
    return split, parts[-2], parts[-1]


def decode_image(data: bytes, source: str) -> npt.NDArray[np.uint8]:
    """Decodes image bytes to a uint8 (32, 32, 3) RGB array."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode != "RGB":
                image = image.convert("RGB")
            array = np.array(image, dtype=np.uint8)
    except Exception as error:
        raise ValueError(f"Could not decode the image {source}: {error}")
    if array.shape != _IMAGE_SHAPE:
        raise ValueError(
            f"{source} has shape {array.shape}; CIFAR-10 images are 32x32 RGB."
        )
    return array


def read_tree(entries: Mapping[TreeEntry, bytes], source: str) -> ReadResult:
    """Builds the splits from `{(split, class, file): bytes}` of a tree.

    Returns `((x_train, y_train), (x_test, y_test), has_test, "tree")`,
    images in class order then natural file-name order; the test slot holds
    `test/` if present, else `val/`/`validation/`/`valid/`, else nothing.
    """
    unknown = sorted({cls for _, cls, _ in entries} - set(CLASS_NAMES))
    if unknown:
        raise ValueError(
            f"{source} has class folders {unknown} that are not CIFAR-10 "
            f"classes; expected folders named {list(CLASS_NAMES)}."
        )
    splits = {split for split, _, _ in entries}
    if "train" not in splits:
        raise ValueError(f"{source} has no train/<class>/ images.")
    test_split = next((s for s in TEST_SPLITS if s in splits), None)

    def build(split: str | None) -> Split:
        keys = sorted(
            (k for k in entries if k[0] == split),
            key=lambda k: (CLASS_NAMES.index(k[1]), _natural_key(k[2])),
        )
        if not keys:
            return (np.zeros((0,) + _IMAGE_SHAPE, np.uint8),
                    np.zeros((0,), np.uint8))
        x = np.stack([
            decode_image(entries[k], f"{source}:{'/'.join(k)}") for k in keys
        ])
        y = np.array([CLASS_NAMES.index(k[1]) for k in keys], np.uint8)
        return x, y

    return build("train"), build(test_split), test_split is not None, "tree"


def read_archive(path: str) -> ReadResult:
    """Reads a `.tar.gz` holding either layout; see the module docstring."""
    batches: dict[str, bytes] = {}
    tree: dict[TreeEntry, bytes] = {}
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META_FILE}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            check_member(member, path)
            if not (member.isfile() or member.islnk() or member.issym()):
                continue
            base = posixpath.basename(member.name)
            entry = tree_entry(member.name)
            if base in wanted or entry is not None:
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if base in wanted:
                    batches[base] = data
                elif entry is not None:
                    tree[entry] = data
    if "data_batch_1" in batches:
        return read_batches(batches, path)
    if tree:
        return read_tree(tree, path)
    raise ValueError(
        f"{path} holds neither the pickled CIFAR-10 batches nor a "
        "train/<class>/ image tree."
    )


def read_folder(path: str) -> ReadResult:
    """Reads a folder holding either layout (see the module docstring)."""
    if os.path.isfile(os.path.join(path, "data_batch_1")):
        files: dict[str, bytes] = {}
        for name in TRAIN_BATCHES + (TEST_BATCH, META_FILE):
            file = os.path.join(path, name)
            if os.path.isfile(file):
                with open(file, "rb") as handle:
                    files[name] = handle.read()
        return read_batches(files, path)
    tree: dict[TreeEntry, bytes] = {}
    for root, _, names in os.walk(path):
        for name in names:
            file = os.path.join(root, name)
            entry = tree_entry(os.path.relpath(file, path))
            if entry is not None:
                with open(file, "rb") as handle:
                    tree[entry] = handle.read()
    if not tree:
        raise ValueError(
            f"{path} holds neither the pickled CIFAR-10 batches nor a "
            "train/<class>/ image tree."
        )
    return read_tree(tree, path)
