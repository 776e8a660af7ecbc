"""Tests for keras_regkit.data.cifar10 (loading, safety, cache, sample)."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from keras_regkit.data import CLASS_NAMES
from keras_regkit.data import cifar10
from keras_regkit.data import load_cifar10
from keras_regkit.data import load_cifar10_sample
from keras_regkit.data import _formats
from tests.helpers import PER_BATCH
from tests.helpers import REPO_ROOT
from tests.helpers import write_cifar_batches

@pytest.fixture
def batches(tmp_path, cifar10_small):
    x, y = cifar10_small
    return write_cifar_batches(tmp_path / "data" / "cifar-10-batches-py", x, y)


def _check_batches_result(result, cifar10_small):
    (x_train, y_train), (x_test, y_test) = result
    x, y = cifar10_small
    n = 5 * PER_BATCH
    assert x_train.shape == (n, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (n, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (PER_BATCH, 32, 32, 3)
    assert y_test.shape == (PER_BATCH, 1)
    np.testing.assert_array_equal(x_train, x[:n])
    np.testing.assert_array_equal(y_train[:, 0], y[:n])
    np.testing.assert_array_equal(x_test, x[n:n + PER_BATCH])


def test_reads_pickled_folder(batches, tmp_path, cifar10_small):
    result = load_cifar10(batches.parent, cache_dir=tmp_path / "cache")
    _check_batches_result(result, cifar10_small)


def test_reads_numpy1_pickles(tmp_path, cifar10_small):
    x, y = cifar10_small
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", x, y, True)
    assert b"numpy.core.multiarray" in (folder / "test_batch").read_bytes()
    _check_batches_result(load_cifar10(folder, cache=False), cifar10_small)


def test_reads_pickled_tar(batches, tmp_path, cifar10_small):
    archive = tmp_path / "dl" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    result = load_cifar10(archive.parent, cache_dir=tmp_path / "cache")
    _check_batches_result(result, cifar10_small)


class _WritesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class _RunsShell:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload", [_WritesFile, _RunsShell])
def test_malicious_batch_is_refused_and_never_runs(batches, tmp_path,
                                                   payload):
    target = tmp_path / "pwned.txt"
    evil = {b"data": payload(target), b"labels": [0]}
    (batches / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(ValueError, match="Refusing to load the global"):
        load_cifar10(batches, cache=False)
    assert not target.exists()


def test_meta_with_other_classes_is_refused(batches):
    meta = {b"label_names": [b"apple"] * 10}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta))
    with pytest.raises(ValueError, match="not CIFAR-10's"):
        load_cifar10(batches, cache=False)


def test_missing_batch_is_named(batches):
    (batches / "data_batch_4").unlink()
    with pytest.raises(ValueError, match="missing data_batch_4"):
        load_cifar10(batches, cache=False)


def _add(tar, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize("name,kind,link", [
    ("../evil.jpg", tarfile.REGTYPE, ""),
    ("train/../../evil.jpg", tarfile.REGTYPE, ""),
    ("/tmp/evil.jpg", tarfile.REGTYPE, ""),
    ("train/cat/link.jpg", tarfile.SYMTYPE, "../../../etc/passwd"),
    ("train/cat/abs.jpg", tarfile.SYMTYPE, "/etc/passwd"),
    ("train/cat/hard.jpg", tarfile.LNKTYPE, "../outside.jpg"),
    ("train/cat/dev", tarfile.CHRTYPE, ""),
])
def test_archive_members_escaping_are_refused(tmp_path, name, kind, link):
    archive = tmp_path / "box" / "cifar10_bad.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "train/cat/0000.png")
        _add(tar, name, kind=kind, link=link)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="Refusing to read"):
        load_cifar10(archive, cache=False)
    assert sorted(tmp_path.rglob("*")) == before  # nothing was written


def _write_tree(root, x, y, splits):
    from PIL import Image

    for split, part in splits.items():
        for i in part:
            folder = root / split / CLASS_NAMES[y[i]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(folder / f"{i:04d}.png")  # lossless
    return root


def test_reads_tree_folder_with_test_split(tmp_path, cifar10_small):
    x, y = cifar10_small
    root = _write_tree(tmp_path / "tree", x, y,
                       {"train": range(60), "test": range(60, 80)})
    (x_train, y_train), (x_test, y_test) = load_cifar10(
        root, cache=False, shuffle_seed=None)
    order = sorted(range(60), key=lambda i: (y[i], i))  # class by class
    np.testing.assert_array_equal(x_train, x[order])
    np.testing.assert_array_equal(y_train[:, 0], y[order])
    assert x_test.shape == (20, 32, 32, 3) and y_test.shape == (20, 1)
    shuffled = load_cifar10(root, cache=False)[0]
    assert not np.array_equal(shuffled[1], y_train)  # fixed shuffle
    assert sorted(shuffled[1][:, 0]) == sorted(y_train[:, 0])


def test_tree_archive_without_test_split_warns(tmp_path, cifar10_small):
    x, y = cifar10_small
    root = _write_tree(tmp_path / "tree", x, y, {"train": range(30)})
    archive = tmp_path / "cifar10_train.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "train", arcname="train")
    with pytest.warns(UserWarning, match="no test split"):
        (x_train, y_train), (x_test, y_test) = load_cifar10(archive,
                                                            cache=False)
    assert x_train.shape == (30, 32, 32, 3)
    assert x_test.shape == (0, 32, 32, 3) and x_test.dtype == np.uint8
    assert y_test.shape == (0, 1)


def test_tree_with_unknown_class_is_refused(tmp_path, cifar10_small):
    x, y = cifar10_small
    root = _write_tree(tmp_path / "tree", x, y, {"train": range(5)})
    (root / "train" / CLASS_NAMES[y[0]]).rename(root / "train" / "kitten")
    with pytest.raises(ValueError, match="not CIFAR-10 classes"):
        load_cifar10(root, cache=False)


def test_second_load_reads_the_cache(batches, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = load_cifar10(batches, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("cifar10-*.npz"))) == 1

    def fail(path):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(_formats, "read_folder", fail)
    second = load_cifar10(batches, cache_dir=cache_dir)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # A changed source (size and mtime) gets a new cache entry.
    monkeypatch.undo()
    with open(batches / "batches.meta", "ab") as handle:
        handle.write(b"\n")
    os.utime(batches / "batches.meta", ns=(0, 10**9))
    load_cifar10(batches, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("cifar10-*.npz"))) == 2


def test_missing_data_dir_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="data_dir.*nowhere"):
        load_cifar10(missing)


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """An empty Keras home and temp dir, so the search finds nothing."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(cifar10.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(cifar10.tempfile, "gettempdir",
                        lambda: str(tmp_path / "tmp"))
    return tmp_path


def test_error_lists_every_place_looked(empty_home):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(cache=False)
    message = str(info.value)
    for folder in ("home", "tmp"):
        base = empty_home / folder / ("datasets" if folder == "home" else
                                      ".keras/datasets")
        assert str(base / "cifar-10-batches-py") in message
        assert str(base / "cifar-10-python.tar.gz") in message
    assert "data_dir" in message and "allow_download=False" in message


def test_failed_download_is_reported(empty_home, monkeypatch):
    import keras

    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match="network unreachable"):
        load_cifar10(allow_download=True, cache=False)
    assert calls[0]["origin"] == cifar10.CIFAR10_URL
    assert calls[0]["file_hash"] == cifar10.CIFAR10_SHA256


def test_finds_the_keras_download_cache(empty_home, cifar10_small):
    x, y = cifar10_small
    write_cifar_batches(empty_home / "home" / "datasets" /
                   "cifar-10-batches-py-target" / "cifar-10-batches-py", x, y)
    _check_batches_result(load_cifar10(cache=False), cifar10_small)


def test_file_that_is_not_an_archive_is_refused(tmp_path):
    fake = tmp_path / "cifar-10-python.tar.gz"
    fake.write_bytes(b"not a tar file")
    with pytest.raises(ValueError, match="not a readable tar archive"):
        load_cifar10(fake, cache=False)


def test_bad_shuffle_seed_is_refused(batches):
    with pytest.raises(ValueError, match="shuffle_seed"):
        load_cifar10(batches, shuffle_seed=-1)


def test_sample_shapes_and_balance():
    assert cifar10.SAMPLE_PATH.stat().st_size <= 5 * 2**20
    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    assert x_train.shape == (2000, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_val.shape == (500, 32, 32, 3)
    assert y_train.shape == (2000, 1) and y_val.shape == (500, 1)
    np.testing.assert_array_equal(np.bincount(y_train[:, 0]), [200] * 10)
    np.testing.assert_array_equal(np.bincount(y_val[:, 0]), [50] * 10)
    # Shuffled: any slice is roughly balanced.
    assert np.bincount(y_train[:200, 0], minlength=10).min() >= 8


def test_sample_is_decoded_once_and_every_call_gets_its_own_arrays(
        monkeypatch):
    (x, y), (x_val, y_val) = load_cifar10_sample(shuffle_seed=None)

    def fail(path):
        raise AssertionError("the sample was decoded a second time")

    monkeypatch.setattr(_formats, "read_archive", fail)
    x[:] = 0  # a caller changing its arrays changes nobody else's
    y_val[:] = 9
    (x2, y2), (x_val2, y_val2) = load_cifar10_sample(shuffle_seed=None)
    assert x2.any() and (y_val2 != 9).any()
    np.testing.assert_array_equal(y2, y)
    assert (np.diff(y2[:, 0].astype(int)) >= 0).all()  # class by class
    # A seed: the same images in another order, one order per seed.
    (x3, y3), _ = load_cifar10_sample(shuffle_seed=3)
    (x4, y4), _ = load_cifar10_sample(shuffle_seed=4)
    (x5, y5), _ = load_cifar10_sample(shuffle_seed=3)
    assert not np.array_equal(y3, y4)
    np.testing.assert_array_equal(x5, x3)
    np.testing.assert_array_equal(np.sort(y3[:, 0]), y2[:, 0])
    np.testing.assert_array_equal(np.sort(x3.reshape(-1)),
                                  np.sort(x2.reshape(-1)))


def test_sample_is_the_original_jpegs(cifar10_archive):
    with tarfile.open(cifar10.SAMPLE_PATH) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar
                   if m.isfile()}
    names = sorted(members)
    picks = [n for n in names if "/airplane/" in n][:3]
    picks += [n for n in names if "/automobile/" in n][-2:]
    wanted = {"train/" + n.split("/", 1)[1]: n for n in picks}
    originals = {}
    with tarfile.open(cifar10_archive) as tar:
        for member in tar:
            if member.name in wanted:
                originals[wanted[member.name]] = tar.extractfile(member).read()
            if len(originals) == len(picks):
                break
    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    x_all, y_all = np.concatenate([x_train, x_val]), np.concatenate(
        [y_train, y_val])
    for name in picks:
        assert members[name] == originals[name]  # byte for byte
        pixels = _formats.decode_image(originals[name], name)
        hits = np.flatnonzero((x_all == pixels).all(axis=(1, 2, 3)))
        assert len(hits) == 1
        assert CLASS_NAMES[y_all[hits[0], 0]] == name.split("/")[1]


@pytest.mark.slow
@pytest.mark.backend_independent
def test_make_sample_rebuilds_the_same_bytes(cifar10_archive):
    import importlib.util

    path = REPO_ROOT / "tools" / "make_sample.py"
    spec = importlib.util.spec_from_file_location("make_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.build_archive(module.select(
        module.read_source(cifar10_archive)))
    assert data == cifar10.SAMPLE_PATH.read_bytes()


@pytest.mark.slow
@pytest.mark.backend_independent
def test_full_archive_and_its_cache(cifar10_archive, cifar10_small,
                                    tmp_path, monkeypatch):
    with pytest.warns(UserWarning, match="no test split"):
        (x, y), (x_test, _) = load_cifar10(
            cifar10_archive, cache_dir=tmp_path, shuffle_seed=None)
    assert x.shape == (50000, 32, 32, 3) and x_test.shape[0] == 0
    np.testing.assert_array_equal(np.bincount(y[:, 0]), [5000] * 10)
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)) / 255,
                               [0.4913, 0.4821, 0.4465], atol=2e-4)

    def fail(path):
        raise AssertionError("decoded again instead of using the cache")

    # The second load reads the cache, not the archive (how fast that is
    # is a benchmark question, not a test).
    monkeypatch.setattr(_formats, "read_archive", fail)
    with pytest.warns(UserWarning, match="no test split"):
        (x2, y2), _ = load_cifar10(cifar10_archive, cache_dir=tmp_path,
                                   shuffle_seed=None)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    # Class by class: the fixture's images (the first 100 of each class)
    # are among the first 100 of their class's block.
    xs, ys = cifar10_small
    for i in range(0, 1000, 97):
        block = x[ys[i] * 5000:ys[i] * 5000 + 100]
        assert (block == xs[i]).all(axis=(1, 2, 3)).sum() == 1
