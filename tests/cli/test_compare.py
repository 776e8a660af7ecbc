"""`regkit compare`: flags and the ablation names."""

import pytest

from keras_regkit import cli
from keras_regkit._choices import ABLATION_NAMES
from keras_regkit._choices import PRESET_NAMES


def test_compare_help_lists_every_ablation_and_preset(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ablations among: " + ", ".join(ABLATION_NAMES) in text
    assert "(" + ", ".join(PRESET_NAMES) + ")" in text
    for group in ("Model:", "Training:", "Data:", "Output:"):
        assert group in text


def test_ablations_are_the_names_the_help_lists():
    from keras_regkit.experiments.compare import ABLATIONS

    assert tuple(ABLATIONS) == ABLATION_NAMES


def test_compare_needs_ablate(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare"])
    assert exc.value.code == 2
    assert "--ablate" in capsys.readouterr().err


def test_unknown_ablation_exits_2_naming_the_valid_ones(tmp_path, capsys):
    assert cli.main(["compare", "--ablate", "dropuot", "--out",
                     str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "regkit compare: error: Unknown ablation(s): dropuot" in err
    assert ", ".join(ABLATION_NAMES) in err
