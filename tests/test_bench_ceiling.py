"""bench/bench_ceiling.py: the step beside its own convolutions."""

import re

import numpy as np
import pytest

from tests.helpers import REPO_ROOT

# The script times TensorFlow's kernels (tf.nn.conv2d) by design.
pytestmark = pytest.mark.requires_tensorflow


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))
    import bench_ceiling

    return bench_ceiling


def test_it_times_every_convolution_of_the_fast_net(bench):
    import _fast

    model, _ = bench.build_step("float32", 4, "sgd")
    shapes = bench.conv_shapes(model, 4)
    # Two convolutions in each of the three groups (the whitening stem is
    # frozen and not a Conv2D).
    assert len(shapes) == 6
    assert [k[-1] for _, k, _ in shapes] == [64, 64, 256, 256, 256, 256]
    for (x, kernel, padding) in shapes:
        assert x[0] == 4 and x[-1] == kernel[2] and padding == "SAME"
    # Their forward FLOP are the step's third, less the head and the stem.
    head_and_stem = 2 * (256 * 10 + 31 * 31 * 2 * 2 * 3 * 24) / 1e9
    per_image = bench.conv_gflop(shapes, model) / 4
    np.testing.assert_allclose(
        3 * (per_image + head_and_stem),
        _fast.training_gflop_per_image(model), rtol=1e-6)


def test_its_convolutions_and_gradients_are_the_layers(bench):
    import keras

    model, _ = bench.build_step("float32", 2, "sgd")
    shapes = bench.conv_shapes(model, 2)
    inputs, kernels = bench.random_operands(shapes, "float32")
    forward, both = bench.conv_fns(inputs, kernels, ["SAME"] * 6)
    sums, grads = forward(), both()
    # Forward: each convolution is a Keras Conv2D with that kernel.
    for x, kernel, total in zip(inputs, kernels, sums):
        conv = keras.layers.Conv2D(kernel.shape[-1], 3, padding="same",
                                   use_bias=False)
        conv.build(x.shape)
        conv.kernel.assign(kernel.numpy())
        expected = np.sum(keras.ops.convert_to_numpy(conv(x.numpy())),
                          dtype="float64")
        np.testing.assert_allclose(float(total), expected, rtol=1e-3,
                                   atol=1e-3 * np.sqrt(np.prod(x.shape)))
    # Backward, for the loss sum(output), from the definition: each kernel
    # tap's gradient sums the input pixels it meets over all positions,
    # the same for every output channel; each input pixel's gradient sums
    # the kernel taps that reach it.
    x, kernel = inputs[-1].numpy(), kernels[-1].numpy()
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    size = x.shape[1]
    tap_sums = np.array([[padded[:, i:i + size, j:j + size].sum()
                          for j in range(3)] for i in range(3)])
    dk_total = tap_sums.sum() * kernel.shape[-1]
    reach = np.zeros((size, size))
    per_tap = kernel.sum(axis=(2, 3))
    for i in range(3):
        for j in range(3):
            ys = slice(max(0, i - 1), size + min(0, i - 1))
            xs = slice(max(0, j - 1), size + min(0, j - 1))
            reach[ys, xs] += per_tap[i, j]
    dx_total = reach.sum() * x.shape[0]
    np.testing.assert_allclose(float(grads[-1]), dk_total, rtol=1e-4)
    np.testing.assert_allclose(float(grads[-2]), dx_total, rtol=1e-4)


def test_the_command_prints_each_precisions_rows(bench, capsys):
    bench.main(["--precisions", "float32", "--batch", "2", "--rounds", "1",
                "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    rows = re.findall(r"^float32 +(.+?) +([\d.]+) +(\d+) +([\d.]+)$", out,
                      re.MULTILINE)
    assert [r[0] for r in rows] == [
        "training step (the network, loss, optimizer)",
        "its convolutions, forward",
        "its convolutions, forward + backward"]
    assert float(rows[0][3]) == 1.0  # shares are of the step's time
    assert all(float(r[1]) > 0 for r in rows)
    assert re.search(r"^float32 +step img/s +\d+$", out, re.MULTILINE)


def test_its_profile_counts_the_convolutions(bench, tmp_path):
    _, step = bench.build_step("float32", 2, "sgd")
    by_type = bench.profile_step(step, 2, tmp_path)
    assert sum(by_type.values()) > 0
    convolutions = [k for k in by_type if "Conv2D" in k]
    # Forward, input gradient and kernel gradient ops all appear.
    assert any("BackpropFilter" in k for k in convolutions)
    assert any("BackpropInput" in k for k in convolutions)
    assert all(seconds >= 0 for seconds in by_type.values())
    # Ops only: the executor's events, which contain them, are left out.
    assert "Process" not in by_type


def test_its_kernel_gradients_agree_both_ways(bench):
    model, _ = bench.build_step("float32", 2, "sgd")
    shapes = bench.conv_shapes(model, 2)
    inputs, kernels = bench.random_operands(shapes, "float32")
    pairs = bench.kernel_gradient_fns(inputs, kernels, ["SAME"] * 6)
    assert len(pairs) == 6
    for (x, kernel, _), (native, shifted) in zip(shapes, pairs):
        a, b = native().numpy(), shifted().numpy()
        assert a.shape == b.shape == kernel
        # Sums over 2 images' positions of order-1 float32 inputs.
        np.testing.assert_allclose(b, a, rtol=0,
                                   atol=1e-5 * np.abs(a).max())


def test_the_native_step_uses_tensorflows_kernel_gradient(bench, capsys):
    from keras_regkit.layers import FastConv2D

    model, _ = bench.build_step("mixed_bfloat16", 2, "sgd",
                                kernel_gradient="native")
    convs = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, FastConv2D)]
    assert len(convs) == 6
    assert {layer.kernel_gradient for layer in convs} == {"native"}
    bench.main(["--precisions", "mixed_bfloat16", "--batch", "2",
                "--rounds", "1", "--repeats", "1",
                "--compare-kernel-gradients"])
    out = capsys.readouterr().out
    assert re.search(r"^mixed_bfloat16 +step with TensorFlow's "
                     r"kernel-gradient op +[\d.]+", out, re.MULTILINE)
    rows = re.findall(r"^mixed_bfloat16 +(\d+x\d+x\d+ -> \d+) +([\d.]+) +"
                      r"([\d.]+) +([\d.]+)$", out, re.MULTILINE)
    assert [r[0] for r in rows] == [
        "31x31x24 -> 64", "15x15x64 -> 64", "15x15x64 -> 256",
        "7x7x256 -> 256", "7x7x256 -> 256", "3x3x256 -> 256"]
