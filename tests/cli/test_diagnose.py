"""`regkit diagnose`: flags and thresholds."""

import inspect

import pytest

from keras_regkit import cli
from keras_regkit.cli import diagnose


def test_diagnose_help_documents_its_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["diagnose", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--data-dir", "--limit", "--batch-size",
                 "--json", "--unsafe", "--severe-gap", "--overfit-gap",
                 "--underfit-gap", "--underfit-acc",
                 "--zero-fraction-threshold"):
        assert flag in text
    for group in ("Model:", "Data:", "Thresholds:", "Output:"):
        assert group in text


def test_threshold_defaults_are_the_librarys():
    from keras_regkit.analysis.diagnosis import regularization_diagnosis

    parameters = inspect.signature(regularization_diagnosis).parameters
    for name, default, _ in diagnose.THRESHOLDS:
        assert parameters[name].default == default, name


def test_missing_model_is_reported(tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    assert cli.main(["diagnose", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "regkit diagnose: error: Model file not found" in err
    assert str(missing) in err
