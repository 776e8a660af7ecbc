"""Hostile files are refused before any code they carry can run.

Each payload would create a marker file if it ran; every test first shows
that the payload is real (it does run when loaded unsafely), then that
keras_regkit refuses it and the marker never appears.
"""

import ast
import io
import os
import pickle
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from keras_regkit import cli
from keras_regkit.cli._common import load_model
from keras_regkit.training.builder import ProductionModelBuilder
from keras_regkit.data import load_cifar10
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import get_preset

PACKAGE = Path(__file__).resolve().parents[1] / "keras_regkit"
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class _Exec:
    """Unpickling this object runs `exec(code)`."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


class _System:
    """Unpickling this object runs a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _NumpySave:
    """Unpickling this object writes a file through `numpy.save`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return np.save, (self.path, np.zeros(1))


def _payloads(marker):
    """Pickled CIFAR-10-like batches that create `marker` when unpickled."""
    pixels = np.zeros((2, 3072), np.uint8)
    return {
        "exec": pickle.dumps({b"data": pixels, b"labels": [0, 1],
                              b"x": _Exec(f"open({str(marker)!r}, 'w')")}),
        "os-system": pickle.dumps(_System(f"touch '{marker}'"), protocol=2),
        "numpy-save": pickle.dumps({b"labels": [0], b"data": _NumpySave(
            str(marker))}),
    }


@pytest.fixture(params=["exec", "os-system", "numpy-save"])
def payload(request, tmp_path):
    marker = tmp_path / "pwned.npy"
    data = _payloads(marker)[request.param]
    pickle.loads(data)  # the payload is real: loading it unsafely runs it
    assert marker.exists()
    marker.unlink()
    return data, marker


def _batch_folder(folder, data):
    folder.mkdir()
    for name in BATCHES:
        (folder / name).write_bytes(data)
    return folder


def _archive(path, members):
    """A .tar.gz with `members`: (TarInfo, bytes or None)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_pickled_batch_with_code_is_refused_in_a_folder(payload, tmp_path):
    data, marker = payload
    folder = _batch_folder(tmp_path / "cifar-10-batches-py", data)
    with pytest.raises(ValueError, match="Refusing to load the global"):
        load_cifar10(data_dir=folder, cache=False)
    assert not marker.exists()


def test_pickled_batch_with_code_is_refused_in_an_archive(payload, tmp_path):
    data, marker = payload
    members = [(tarfile.TarInfo(f"cifar-10-batches-py/{name}"), data)
               for name in BATCHES]
    archive = _archive(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(ValueError, match="data_batch_1.*global"):
        load_cifar10(data_dir=archive, cache=False)
    assert not marker.exists()


def test_the_cli_refuses_a_hostile_batch_folder(tmp_path, capsys):
    marker = tmp_path / "pwned.npy"
    folder = _batch_folder(tmp_path / "data", _payloads(marker)["exec"])
    code = cli.main(["train", "--dataset", "cifar10", "--data-dir",
                     str(folder), "--out", str(tmp_path / "run")])
    assert code == 2
    assert "Refusing to load the global `builtins.exec`" in (
        capsys.readouterr().err)
    assert not marker.exists()


def _yaml_payloads(marker):
    return {
        "object-apply": f"name: x\nepochs: !!python/object/apply:os.system "
                        f"[\"touch '{marker}'\"]\n",
        "name-tag": "!!python/name:os.system\n",
        "whole-object": "!!python/object/new:os.system "
                        f"[\"touch '{marker}'\"]\n",
    }


@pytest.mark.parametrize("kind", ["object-apply", "name-tag", "whole-object"])
@pytest.mark.parametrize("reader", ["get_preset", "from_yaml", "builder"])
def test_yaml_python_tags_are_refused(tmp_path, kind, reader):
    marker = tmp_path / "pwned"
    text = _yaml_payloads(marker)[kind]
    if kind != "name-tag":  # the payload is real under an unsafe loader
        yaml.unsafe_load(text)
        assert marker.exists()
        marker.unlink()
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    read = {
        "get_preset": get_preset,
        "from_yaml": CapacityPreset.from_yaml,
        "builder": lambda p: ProductionModelBuilder((32, 32, 3), 10, p),
    }[reader]
    with pytest.raises(ValueError, match="python/(object|name)"):
        read(path)
    assert not marker.exists()


def test_cli_config_with_a_python_tag_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = tmp_path / "hostile.yaml"
    config.write_text(_yaml_payloads(marker)["object-apply"])
    code = cli.main(["train", "--config", str(config), "--out",
                     str(tmp_path / "run")])
    assert code == 2
    assert "python/object/apply:os.system" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_hostile_config_in_a_run_folder_is_refused_on_resume(tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(_yaml_payloads(marker)["whole-object"])
    builder = ProductionModelBuilder((32, 32, 3), 10, "small",
                                     conv_filters=(8,), dense_units=())
    x = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="python/object"):
        builder.train(x, np.arange(4), epochs=1, run_dir=run, verbose=0)
    assert not marker.exists()


def _tree_image():
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize("member,pattern", [
    (lambda t: (tarfile.TarInfo("train/cat/../../../escape.png"), b"x"),
     r"'\.\.' component"),
    (lambda t: (tarfile.TarInfo(str(t / "absolute.png")), b"x"),
     "absolute path"),
    (lambda t: (_link("train/cat/link.png", "../../../../etc/passwd",
                      tarfile.SYMTYPE), None), "points outside"),
    (lambda t: (_link("train/cat/hard.png", "/etc/passwd",
                      tarfile.LNKTYPE), None), "points outside"),
    (lambda t: (_device("train/cat/dev.png"), None), "device or special"),
], ids=["dotdot", "absolute", "symlink-out", "hardlink-absolute", "device"])
def test_archive_members_escaping_the_root_are_refused(tmp_path, member,
                                                       pattern):
    inside = tmp_path / "inside"
    inside.mkdir()
    image = _tree_image()
    members = [(tarfile.TarInfo(f"train/{cls}/0.png"), image)
               for cls in ("cat", "dog")]
    members.insert(1, member(tmp_path))
    archive = _archive(inside / "cifar10_tree.tar.gz", members)
    with pytest.raises(ValueError, match=pattern):
        load_cifar10(data_dir=archive, cache=False)
    written = sorted(str(p.relative_to(tmp_path))
                     for p in tmp_path.rglob("*"))
    assert written == ["inside", "inside/cifar10_tree.tar.gz"]


def _lambda_model(path, marker):
    """A .keras model whose Lambda layer creates `marker` when rebuilt."""
    inputs = keras.Input((32, 32, 3))
    # The path is a constant of the function's code (Keras cannot reload
    # lambdas with default arguments).
    touch = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    x = keras.layers.Lambda(touch)(inputs)
    outputs = keras.layers.Dense(10, "softmax")(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(path)
    marker.unlink()
    return path


def test_models_load_in_safe_mode_unless_unsafe_is_asked(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _lambda_model(tmp_path / "hostile.keras", marker)
    with pytest.raises(ValueError, match="safe_mode"):
        load_model(path)
    assert not marker.exists()
    model = load_model(path, unsafe=True)
    assert marker.exists() and model.output_shape == (None, 10)
    assert "--unsafe loads the model with safe_mode=False" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("command", ["evaluate", "diagnose"])
def test_cli_refuses_a_lambda_model_without_unsafe(tmp_path, capsys,
                                                   command):
    marker = tmp_path / "pwned"
    path = _lambda_model(tmp_path / "hostile.keras", marker)
    assert cli.main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert f"regkit {command}: error" in err and "safe_mode" in err
    assert not marker.exists()


def test_cli_unsafe_flag_loads_with_a_warning(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _lambda_model(tmp_path / "hostile.keras", marker)
    assert cli.main(["evaluate", "--unsafe", str(path)]) == 0
    captured = capsys.readouterr()
    assert "warning: --unsafe" in captured.err
    assert "accuracy" in captured.out and marker.exists()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def test_no_code_path_turns_a_safety_off_by_itself():
    safe_modes, unsafe = [], []
    for file in sorted(PACKAGE.rglob("*.py")):
        for name, call in _calls(ast.parse(file.read_text())):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            if "safe_mode" in keywords:
                safe_modes.append((file.name, keywords["safe_mode"]))
            last = name.rsplit(".", 1)[-1]
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load",
                        "pickle.load", "pickle.loads") or last in (
                            "extractall", "extract") or (
                    last == "load" and keywords.get("allow_pickle") == "True"):
                unsafe.append((file.name, name))
    # Only the loader behind --unsafe chooses, and only from the flag.
    assert safe_modes == [("_common.py", "not unsafe")]
    assert unsafe == []
