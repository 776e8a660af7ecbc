"""compare_ablations and the `compare` / `diagnose` commands."""

import argparse
import csv
import json

import keras
import pytest
from PIL import Image

from keras_regkit.cli import _common
from keras_regkit.cli.compare import add_parser as add_compare_parser
from keras_regkit.cli.diagnose import add_parser as add_diagnose_parser
from keras_regkit.experiments.compare import ABLATIONS
from keras_regkit.experiments.compare import parse_ablations


def run_command(argv):
    parser = argparse.ArgumentParser(prog="regkit")
    sub = parser.add_subparsers(dest="command")
    add_compare_parser(sub)
    add_diagnose_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def fixture_data(monkeypatch, cifar10_small):
    """`regkit`'s data loader replaced by 200 + 100 real CIFAR-10 images."""
    x, y = cifar10_small

    def load(args):
        return x[:200], y[:200], x[200:300], y[200:300], "test fixture"

    monkeypatch.setattr(_common, "load_data", load)
    return x, y


def test_ablation_names_are_parsed_and_validated():
    assert parse_ablations("dropout, l2,dropout") == ["dropout", "l2"]
    assert parse_ablations(["augmentation"]) == ["augmentation"]
    with pytest.raises(ValueError, match="Unknown ablation.*mixup.*Valid "
                       "ablations: dropout, l2, augmentation, "
                       "label_smoothing"):
        parse_ablations("dropout,mixup")
    with pytest.raises(ValueError, match="none given"):
        parse_ablations(" ")


def test_each_ablation_switches_off_its_fields():
    from keras_regkit.models.presets import get_preset

    preset = get_preset("large")
    for name, overrides in ABLATIONS.items():
        changed = preset.replace(**overrides)
        for field, value in overrides.items():
            assert getattr(changed, field) == value, (name, field)
    assert ABLATIONS["dropout"] == {"dropout_dense": 0.0, "dropout_conv": 0.0}
    assert ABLATIONS["l2"] == {"weight_decay": 0.0, "l2": 0.0}
    assert ABLATIONS["augmentation"] == {
        "augmentation": "none", "mixup_alpha": 0.0, "cutmix_alpha": 0.0}
    assert ABLATIONS["label_smoothing"] == {"label_smoothing": 0.0}


def test_compare_help_documents_its_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        run_command(["compare", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--capacity", "--ablate", "--epochs", "--out", "--seed",
                 "--dataset", "--limit", "--save-runs"):
        assert flag in text


def test_unknown_ablation_fails_before_loading_data(monkeypatch, tmp_path):
    def fail(args):
        raise AssertionError("data loaded")

    monkeypatch.setattr(_common, "load_data", fail)
    with pytest.raises(ValueError, match="Unknown ablation"):
        run_command(["compare", "--ablate", "dropuot", "--out",
                     str(tmp_path)])


@pytest.mark.slow
def test_compare_writes_table_csv_and_curves(fixture_data, tmp_path, capsys):
    from keras_regkit.models.presets import get_preset

    out = tmp_path / "cmp"
    # The small preset, narrowed (a YAML preset, as a user would write
    # one): what is tested is the table, not the models, and the preset's
    # own widths took most of the test's time training. tf.data on
    # TensorFlow; on JAX and PyTorch the TensorFlow-free path: NumPy
    # batches, with the preset's policy replaced by the flips the loader
    # applies.
    narrow = dict(conv_filters=(8, 16), dense_units=(32,))
    loader = ["--loader", "tf.data"]
    if keras.backend.backend() != "tensorflow":
        narrow["augmentation"] = "flip"
        loader = ["--loader", "arrays"]
    capacity = str(get_preset("small", **narrow).to_yaml(
        tmp_path / "small_narrow.yaml"))
    # "small" has no label smoothing: that ablation reuses the preset's run.
    assert run_command(["compare", "--capacity", capacity, "--ablate",
                        "dropout,label_smoothing", "--epochs", "1",
                        "--out", str(out), *loader]) == 0
    printed = capsys.readouterr().out
    assert "[compare] no_dropout" in printed
    assert "[compare] no_label_smoothing" not in printed  # not trained again
    with open(out / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["preset", "no_dropout",
                                        "no_label_smoothing"]
    assert rows[1]["changes"] == "dropout_dense=0.0, dropout_conv=0.0"
    assert rows[2]["changes"] == "none (same as preset)"
    assert rows[2]["val_acc"] == rows[0]["val_acc"]
    for row in rows:
        assert 0.0 <= float(row["val_acc"]) <= 1.0
        assert float(row["gap"]) == pytest.approx(
            float(row["train_acc"]) - float(row["val_acc"]))
        assert row["epochs"] == "1"
    table = (out / "table.md").read_text()
    assert "| no_dropout | dropout_dense=0.0, dropout_conv=0.0 |" in table
    assert (out / "validation_curves.png").read_bytes()[:4] == b"\x89PNG"
    with Image.open(out / "validation_curves.png") as image:
        assert image.size == (1000, 400)
    results = json.loads((out / "results.json").read_text())
    assert set(results["histories"]) == {"preset", "no_dropout",
                                         "no_label_smoothing"}


def _saved_model(tmp_path, lambda_layer=False):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(inputs)
    if lambda_layer:
        x = keras.layers.Lambda(lambda t: t * 1.0)(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path = tmp_path / "model.keras"
    model.save(path)
    return path


def test_diagnose_prints_the_report_and_writes_json(fixture_data, tmp_path,
                                                    capsys):
    path = _saved_model(tmp_path)
    report_path = tmp_path / "report.json"
    assert run_command(["diagnose", str(path), "--json", str(report_path),
                        "--overfit-gap", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "200 training / 100 validation images" in out
    assert "Verdict: " in out
    report = json.loads(report_path.read_text())
    assert report["verdict"] in ("severe_overfitting", "overfitting",
                                 "underfitting", "over_regularized", "good")
    assert report["thresholds"]["overfit_gap"] == 0.5


def test_diagnose_loads_in_safe_mode_unless_unsafe(fixture_data, tmp_path,
                                                   capsys):
    path = _saved_model(tmp_path, lambda_layer=True)
    with pytest.raises(ValueError, match="safe_mode"):
        run_command(["diagnose", str(path)])
    assert run_command(["diagnose", str(path), "--unsafe"]) == 0
    captured = capsys.readouterr()
    assert "safe_mode=False" in captured.err
    assert "Verdict: " in captured.out


def test_diagnose_reports_a_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        run_command(["diagnose", str(tmp_path / "nope.keras")])
