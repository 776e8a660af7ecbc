"""The `regkit` command: flags, the run folder, errors."""

import json
import subprocess
import sys

import pytest

from keras_regkit import cli


def test_train_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--capacity", "--config", "--dataset", "--data-dir",
                 "--epochs", "--batch-size", "--seed", "--out",
                 "--precision", "--augment-on", "--overwrite"):
        assert flag in text


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "train" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--capacity", "huge"], "invalid choice: 'huge'"),
        (["train", "--epochs", "0"], "positive integer"),
        (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    ],
)
def test_bad_flags_exit_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_config_file_is_reported(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code = cli.main(["train", "--config", str(missing), "--out",
                     str(tmp_path / "run")])
    assert code == 2
    assert str(missing) in capsys.readouterr().err


def test_missing_data_dir_is_reported(tmp_path, capsys):
    code = cli.main(["train", "--dataset", "cifar10", "--data-dir",
                     str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.slow
def test_train_on_the_embedded_sample_writes_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    from keras_regkit.models.presets import get_preset

    get_preset("small", conv_filters=(8, 16), dense_units=(32,)).to_yaml(config)
    code = cli.main(["train", "--config", str(config), "--epochs", "1",
                     "--batch-size", "128", "--out", str(run), "--verbose",
                     "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and str(run) in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_recorded"] == 1
    for name in ("config.yaml", "history.csv", "best_model.keras",
                 "training_curves.png"):
        assert (run / name).exists()
    # The same command again refuses to overwrite the finished run.
    assert cli.main(["train", "--config", str(config), "--epochs", "1",
                     "--out", str(run), "--verbose", "0"]) == 2


def test_python_dash_m_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "keras_regkit", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0
    assert "train" in result.stdout


def test_evaluate_reports_the_accuracy_of_a_saved_model(tmp_path, capsys):
    import keras
    import numpy as np

    from keras_regkit.data import load_cifar10_sample

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path = tmp_path / "m.keras"
    model.save(path)
    _, (x_val, y_val) = load_cifar10_sample()
    probs = model.predict(x_val.astype("float32") / 255, verbose=0)
    probs = (probs + model.predict(x_val[:, :, ::-1].astype("float32") / 255,
                                   verbose=0)) / 2
    expected = float((probs.argmax(-1) == np.asarray(y_val).reshape(-1)).mean())
    assert cli.main(["evaluate", str(path), "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {expected:.4f} on {len(x_val)} images" in out
    assert cli.main(["evaluate", str(tmp_path / "missing.keras")]) == 2
