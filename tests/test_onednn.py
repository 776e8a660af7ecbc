"""keras_regkit._onednn: TensorFlow's oneDNN kernels on every x86 CPU."""

import os
import platform
import subprocess
import sys

import pytest

from keras_regkit import _onednn
from keras_regkit.cli import main

ENV = _onednn.ONEDNN_ENV


@pytest.fixture
def before_tensorflow(monkeypatch):
    """As in a fresh process on x86: no variable, TensorFlow not imported.

    The setenv first makes monkeypatch remove, afterwards, what the test
    sets: the other tests of this process keep TensorFlow's own choice.
    """
    monkeypatch.setenv(ENV, "unset by the fixture")
    monkeypatch.delenv(ENV)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")


def test_sets_the_variable_before_tensorflow_is_imported(before_tensorflow):
    assert _onednn.prefer_onednn() is True
    assert os.environ[ENV] == "1"
    # A second call finds it set and leaves it.
    assert _onednn.prefer_onednn() is False
    assert os.environ[ENV] == "1"


def test_a_value_of_your_own_is_kept(before_tensorflow, monkeypatch):
    monkeypatch.setenv(ENV, "0")
    assert _onednn.prefer_onednn() is False
    assert os.environ[ENV] == "0"


def test_too_late_once_tensorflow_is_imported(before_tensorflow,
                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    assert _onednn.prefer_onednn() is False
    assert ENV not in os.environ


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le"])
def test_other_cpus_are_left_alone(before_tensorflow, monkeypatch, machine):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert _onednn.prefer_onednn() is False
    assert ENV not in os.environ


def test_the_regkit_command_asks_for_onednn(before_tensorflow, capsys):
    assert main([]) == 0  # no command: prints the help
    assert "usage" in capsys.readouterr().out
    assert os.environ[ENV] == "1"


@pytest.mark.requires_tensorflow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="oneDNN's switch is for x86 CPUs")
@pytest.mark.parametrize("given, enabled", [(None, True), ("0", False)])
def test_tensorflow_runs_onednn_when_asked(given, enabled):
    # A fresh interpreter: TensorFlow reads the variable once, at import.
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if given is not None:
        env[ENV] = given
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = ("from keras_regkit._onednn import prefer_onednn\n"
            "prefer_onednn()\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "print(port.IsMklEnabled())\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == str(enabled)
