"""What the subcommands share: integer flags, data limits, model loading."""

import argparse
import types

import numpy as np
import pytest

from keras_regkit.cli import _common


@pytest.mark.parametrize("text", ["0", "-3", "big", "1.5", ""])
def test_positive_int_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError,
                       match="expected a positive integer"):
        _common.positive_int(text)


def test_positive_int_parses():
    assert _common.positive_int("12") == 12


@pytest.mark.parametrize("limit, count", [(None, 10), (3, 3), (50, 10)])
def test_limit_cuts_training_and_validation(monkeypatch, limit, count):
    x = np.zeros((10, 2))
    monkeypatch.setattr(_common, "load_data",
                        lambda args: (x, x[:, 0], x, x[:, 0], "fixture"))
    data = _common.load_limited_data(types.SimpleNamespace(limit=limit))
    assert [len(a) for a in data[:4]] == [count] * 4
    assert data[4] == "fixture"


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        _common.load_model(tmp_path / "nope.keras")
