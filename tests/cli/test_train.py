"""`regkit train`: flags, the run folder, errors."""

import json
import re

import keras
import pytest

from keras_regkit import cli
from keras_regkit import _choices


def test_train_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--capacity", "--config", "--dataset", "--data-dir",
                 "--epochs", "--batch-size", "--seed", "--out",
                 "--precision", "--augment-on", "--loader", "--overwrite"):
        assert flag in text
    for group in ("Data:", "Model:", "Training:", "Output:"):
        assert group in text


def test_train_choices_are_the_library_lists():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices = {a.dest: tuple(a.choices) for a in sub.choices["train"]._actions
               if a.choices}
    assert choices["capacity"] == _choices.PRESET_NAMES
    assert choices["architecture"] == _choices.ARCHITECTURE_NAMES
    assert choices["precision"] == _choices.PRECISIONS
    assert choices["augment_on"] == _choices.AUGMENT_ON
    assert choices["augmentation"] == _choices.AUGMENTATION_POLICIES
    assert choices["dataset"] == _choices.DATASETS
    assert choices["loader"] == _choices.LOADERS


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--capacity", "huge"], "invalid choice: 'huge'"),
        (["train", "--epochs", "0"], "positive integer"),
        (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["train", "--augmentation", "rotate"], "invalid choice: 'rotate'"),
        (["train", "--loader", "numpy"], "invalid choice: 'numpy'"),
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
    # tf.data on TensorFlow; on JAX and PyTorch the TensorFlow-free path,
    # NumPy batches with flips, and the preset's MLP: the builder trains
    # its convolutional nets on those backends in tests/training, and here
    # their 2 epochs (compiled by XLA at the tests' optimization level 0 on
    # JAX) were most of the test's time.
    backend = keras.backend.backend()
    loader = ["--loader", "tf.data"] if backend == "tensorflow" else [
        "--loader", "arrays", "--augmentation", "flip",
        "--architecture", "mlp"]
    code = cli.main(["train", "--config", str(config), "--epochs", "2",
                     "--batch-size", "128", "--out", str(run), "--verbose",
                     "0", *loader])
    assert code == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and str(run) in out
    assert f"backend {backend}, loader {loader[1]}," in out
    # After the first epoch: the time it took and what is left.
    assert re.search(r"epoch 1 took [\w ]+; about [\w ]+ left for 1 more "
                     r"epoch \(first epoch, compilation included", out), out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_recorded"] == 2
    for name in ("config.yaml", "history.csv", "best_model.keras",
                 "training_curves.png"):
        assert (run / name).exists()
    # The same command again refuses to overwrite the finished run.
    assert cli.main(["train", "--config", str(config), "--epochs", "1",
                     "--out", str(run), "--verbose", "0"]) == 2
