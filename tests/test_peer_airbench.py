"""bench/peer_airbench.py: the patches it applies, the peer run, the table.

The peer (airbench94_muon.py) is never part of this project, so these tests
run a small stand-in script written here. It has each line the benchmark
patches, reads the data files the benchmark writes and prints its results
in the peer's table format, so `run_peer` is tested end to end with real
PyTorch on the CPU.
"""

import re
import textwrap

import numpy as np
import pytest

from tests.helpers import REPO_ROOT

# PyTorch only, no Keras: these run once, in the TensorFlow pass.
peer_only = pytest.mark.backend_independent

BENCH = REPO_ROOT / "bench"

# A stand-in for the peer, with each construct the patches target.
STAND_IN = textwrap.dedent('''\
    import os
    import torch
    import torch.nn.functional as F
    import torchvision
    import torchvision.transforms as T

    def print_row(run, epoch, train_acc, val_acc, tta, seconds):
        cells = [run, epoch, train_acc, val_acc, tta, seconds]
        print("|" + "|".join(f"  {c:>8}  " for c in cells) + "|")

    @torch.compile
    def features(images):
        mean, std = torch.tensor([0.5] * 3), torch.tensor([0.25] * 3)
        return T.Normalize(mean, std)(images.permute(0, 3, 1, 2)).mean((2, 3))

    def load(name):
        data = torch.load(os.path.join("cifar10", name + ".pt"),
                          map_location=torch.device("cuda"))
        x = features(data["images"].half() / 255)
        return x.float(), data["labels"]

    def main(run, model):
        x, y = load("train")
        x_test, y_test = load("test")
        starter = torch.cuda.Event(enable_timing=True)
        ender = torch.cuda.Event(enable_timing=True)
        seconds = 0.0
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for epoch in range(2):
            starter.record()
            for _ in range(20):
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            ender.record()
            torch.cuda.synchronize()
            seconds += 1e-3 * starter.elapsed_time(ender)
            train_acc = (model(x).argmax(1) == y).float().mean().item()
            val_acc = (model(x_test).argmax(1) == y_test).float().mean()
            print_row(run if epoch == 0 else "", epoch, f"{train_acc:.4f}",
                      f"{val_acc.item():.4f}", "", f"{seconds:.4f}")
        print_row("", "eval", f"{train_acc:.4f}", f"{val_acc.item():.4f}",
                  f"{val_acc.item():.4f}", f"{seconds:.4f}")
        return val_acc

    if __name__ == "__main__":
        model = torch.nn.Linear(3, 10).cuda()
        model.compile(mode="max-autotune")
        main("warmup", model)
        accs = [main(run, model) for run in range(200)]
''')


@pytest.fixture
def peer(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(BENCH))
    import peer_airbench

    return peer_airbench


@peer_only
def test_gpu_patches_only_the_run_count(peer):
    text, patches = peer.patch_peer(STAND_IN, 3, "cuda", "bfloat16")
    assert patches == [
        "run count (1x: 'for run in range\\\\(\\\\d+\\\\)' -> "
        "'for run in range(3)')"]
    assert text == STAND_IN.replace("range(200)", "range(3)")


@peer_only
def test_cpu_patches_are_each_listed(peer):
    text, patches = peer.patch_peer(STAND_IN, 2, "cpu", "bfloat16")
    reasons = [p.split(" (")[0] for p in patches]
    assert reasons == [
        "run count", "device: CPU", "device: CPU",
        "timer: perf_counter for CUDA events",
        "timer: nothing to synchronize on a CPU",
        "timer: define the CPU event", "dtype: bfloat16",
        "eager: no torch.compile", "eager: no model.compile",
        "eager: no warm-up run"]
    assert "cuda" not in text.replace("_CpuEvent", "")
    assert ".bfloat16()" in text and ".half()" not in text
    compile(text, "peer_patched.py", "exec")  # still valid Python
    # Without torchvision, its one piece the peer uses is written out.
    text, patches = peer.patch_peer(STAND_IN, 2, "cpu", "bfloat16",
                                    torchvision=False)
    assert patches[1].startswith("torchvision is not installed")
    assert "import torchvision" not in text
    text32, _ = peer.patch_peer(STAND_IN, 2, "cpu", "float32")
    assert ".float() / 255" in text32


@peer_only
def test_a_script_without_a_patched_line_is_refused_by_name(peer):
    source = STAND_IN.replace("torch.cuda.synchronize()", "pass")
    with pytest.raises(peer.PatchError, match=re.escape(
            "no 'torch.cuda.synchronize()', which the patch 'timer: "
            "nothing to synchronize on a CPU' replaces")):
        peer.patch_peer(source, 1, "cpu", "float32")


@peer_only
def test_the_patched_stand_in_runs_on_the_cpu_and_is_parsed(peer, tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    rng = np.random.default_rng(0)
    # The class is readable from the mean colour: learnable in 40 steps.
    y_train = rng.integers(0, 10, 4000)
    y_val = rng.integers(0, 10, 200)

    def images(labels):
        base = np.stack([labels * 25, 250 - labels * 25,
                         (labels % 2) * 200], -1)[:, None, None, :]
        noise = rng.integers(0, 5, (len(labels), 32, 32, 3))
        return (base + noise).astype(np.uint8)

    data = (images(y_train), y_train, images(y_val), y_val)
    results, wall, patches = peer.run_peer(
        script, tmp_path / "work", 2, "cpu", "float32", data)
    assert len(results) == 2  # the warm-up run is patched away on a CPU
    for r in results:
        assert r["epochs"] == 2
        assert 0.0 < r["time_seconds"] < wall
        assert r["val_acc"] == r["tta_val_acc"]
        assert 0.0 <= r["val_acc"] <= 1.0
        assert r["images_per_s"] == pytest.approx(
            4000 * 2 / r["time_seconds"])
    # The data files hold our split in the peer's format.
    import torch

    train = torch.load(tmp_path / "work" / "cifar10" / "train.pt")
    assert train["images"].dtype == torch.uint8
    assert tuple(train["images"].shape) == (4000, 32, 32, 3)
    np.testing.assert_array_equal(train["labels"].numpy(), y_train)
    assert train["classes"][0] == "airplane" and len(train["classes"]) == 10


@peer_only
def test_parse_keeps_timed_runs_and_drops_the_warm_up(peer):
    log = "\n".join([
        "|  run  |  epoch  |  train_acc  |  val_acc  |  tta_val_acc  |"
        "  time_seconds  |",
        "|  warmup  |  0  |  0.1  |  0.1000  |  |  1.0  |",
        "|  |  eval  |  0.1  |  0.1000  |  0.1000  |  1.5  |",
        "|  0  |  0  |  0.5  |  0.6000  |  |  2.0  |",
        "|  |  7  |  0.9  |  0.9000  |  |  9.0  |",
        "|  |  eval  |  0.9  |  0.9000  |  0.9100  |  9.5  |",
        "Mean: 0.9100    Std: nan"])
    assert peer.parse_peer_log(log) == [
        {"val_acc": 0.9, "epochs": 8, "tta_val_acc": 0.91,
         "time_seconds": 9.5}]


# The fast preset trains on every backend in training/test_builder.py;
# saving is the same `model.save` there too.
@pytest.mark.tensorflow_pass
def test_our_run_saves_each_trained_model_to_score_it_again(peer, tmp_path):
    """`--save-models`: the saved model gives the run's own accuracy."""
    import keras

    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, 96),
            rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, 40))
    results = peer.run_ours(
        data, [3], "array", "float32", 1, name="tiny run",
        overrides={"batch_size": 32, "conv_filters": (8, 8, 8)},
        save_dir=tmp_path / "models")
    saved = tmp_path / "models" / "tiny_run_seed3.keras"
    assert results[0]["label"] == "tiny run seed 3" and saved.is_file()
    model = keras.saving.load_model(saved)
    probs = model.predict(data[2].astype("float32") / 255.0, verbose=0)
    accuracy = float((np.argmax(probs, -1) == data[3]).mean())
    assert accuracy == pytest.approx(results[0]["accuracy"], abs=1e-9)
