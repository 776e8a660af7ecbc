"""The `regkit` command itself: help, version, `python -m`, cheap imports."""

import json
import subprocess
import sys

import pytest

import keras_regkit
from keras_regkit import cli

# Runs `python -m keras_regkit ARGV` in this process and prints which heavy
# modules that imported.
_PROBE = """
import json, runpy, sys
sys.argv = ["regkit"] + json.loads(sys.argv[1])
try:
    runpy.run_module("keras_regkit", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "imported": sorted(
    m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules)}))
"""


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "train" in capsys.readouterr().out


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"regkit {keras_regkit.__version__}")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("train", "evaluate", "compare", "diagnose", "--version"):
        assert command in text


def test_python_dash_m_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "keras_regkit", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0
    assert "train" in result.stdout


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["--version"], ["train", "--help"],
    ["evaluate", "--help"], ["compare", "--help"], ["diagnose", "--help"],
], ids=lambda argv: " ".join(argv) or "no-args")
def test_help_imports_neither_tensorflow_nor_keras(argv):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["code"] in (0, None)
    assert probe["imported"] == []


def test_parser_helpers_still_import_from_analysis():
    from keras_regkit import analysis
    from keras_regkit.cli import compare, diagnose

    assert analysis.add_compare_parser is compare.add_parser
    assert analysis.add_diagnose_parser is diagnose.add_parser
