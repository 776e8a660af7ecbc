"""The fast net's training step on each Keras backend, beside plain PyTorch.

Which framework's CPU kernels train the `fast` preset's network fastest on
this machine? Each configuration runs in its own process (Keras fixes its
backend at import), builds its network, warms up, then times `--steps`
training steps on in-memory images (no input pipeline, no callbacks). The
configurations take turns over `--rounds` rounds, so slow and busy periods
of a shared machine fall on all of them alike; the table gives each one's
median images/s and its ratio to the first row.

- `keras-<backend>` rows train the real fast net (`build_fast_net`, the
  preset's compile through `compile_for_preset`), channels-last as the
  library builds it, in float32 and in mixed bfloat16.
- `torch-*` rows train the same layers (2x2 stem of 24 filters, three
  conv-pool-BN-GELU groups of 64/256/256, max-pool head) written in plain
  PyTorch, as airbench is: float32 or bfloat16 autocast, with the
  contiguous NCHW layout or `torch.channels_last`.

    python bench/bench_backends.py
    python bench/bench_backends.py --only keras-tensorflow torch-bf16-cl

Name the CPU (model and flags) with every figure: the script prints it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_name  # noqa: E402

CONFIGS = {
    "keras-tensorflow-f32": ("keras", "tensorflow", "float32"),
    "keras-tensorflow-bf16": ("keras", "tensorflow", "mixed_bfloat16"),
    "keras-jax-f32": ("keras", "jax", "float32"),
    "keras-jax-bf16": ("keras", "jax", "mixed_bfloat16"),
    "keras-torch-f32": ("keras", "torch", "float32"),
    "keras-torch-bf16": ("keras", "torch", "mixed_bfloat16"),
    "torch-f32": ("torch", "nchw", "float32"),
    "torch-f32-cl": ("torch", "channels_last", "float32"),
    "torch-bf16": ("torch", "nchw", "bfloat16"),
    "torch-bf16-cl": ("torch", "channels_last", "bfloat16"),
}


def _time_steps(step, steps, batch):
    step()  # warm-up: tracing, compilation, allocator growth
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def keras_worker(backend, precision, batch, steps):
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import keras
    import numpy as np

    from keras_regkit.models.fast_net import build_fast_net
    from keras_regkit.models.presets import get_preset
    from keras_regkit.training.recipe import compile_for_preset

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    model = build_fast_net((32, 32, 3), 10, "fast")
    if precision != "float32":
        outputs = keras.layers.Activation("linear", dtype="float32")(
            model.output)
        model = keras.Model(model.input, outputs)
    keras.mixed_precision.set_global_policy("float32")
    # SGD for every variable, as the plain PyTorch step below.
    compile_for_preset(model, get_preset("fast", optimizer="sgd"), 10,
                       steps_per_epoch=100, epochs=10,
                       jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.random((batch, 32, 32, 3), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return _time_steps(lambda: model.train_on_batch(x, y), steps, batch)


def torch_worker(layout, precision, batch, steps):
    import torch
    from torch import nn

    torch.manual_seed(0)

    def group(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.GELU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.GELU()]

    net = nn.Sequential(nn.Conv2d(3, 24, 2), nn.GELU(), *group(24, 64),
                        *group(64, 256), *group(256, 256),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                        nn.Linear(256, 10, bias=False))
    x = torch.rand(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.85,
                          nesterov=True)
    autocast = precision == "bfloat16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = net(x)
        loss = nn.functional.cross_entropy(logits.float(), y,
                                           label_smoothing=0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    return _time_steps(step, steps, batch)


def run_one(name, batch, steps, timeout):
    cmd = [sys.executable, __file__, "--worker", name, "--batch-size",
           str(batch), "--steps", str(steps)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["images_per_s"], ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
    return None, tail[0] if tail else f"exit code {done.returncode}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS),
                        default=list(CONFIGS), metavar="CONFIG",
                        help=f"configurations, in order: {list(CONFIGS)}")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=4,
                        help="timed steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds a configuration may take per round")
    parser.add_argument("--worker", choices=sorted(CONFIGS),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, where, precision = CONFIGS[args.worker]
        worker = keras_worker if kind == "keras" else torch_worker
        speed = worker(where, precision, args.batch_size, args.steps)
        print(json.dumps({"images_per_s": speed}), flush=True)
        return
    print(f"{machine_name()}; batch {args.batch_size}, "
          f"{args.steps} timed steps x {args.rounds} rounds", flush=True)
    speeds = {name: [] for name in args.only}
    errors = {}
    for round_index in range(args.rounds):
        for name in args.only:
            speed, error = run_one(name, args.batch_size, args.steps,
                                   args.timeout)
            if speed is None:
                errors[name] = error
            else:
                speeds[name].append(speed)
            shown = f"{speed:.0f} img/s" if speed else f"failed: {error}"
            print(f"round {round_index + 1} {name}: {shown}", flush=True)
    base = None
    print(f"\n{'configuration':<24s} {'img/s (median)':>15s} "
          f"{'vs first':>9s}")
    for name in args.only:
        if not speeds[name]:
            print(f"{name:<24s} {'failed':>15s}  {errors.get(name, '')}")
            continue
        median = statistics.median(speeds[name])
        base = base or median
        print(f"{name:<24s} {median:15.0f} {median / base:9.2f}")


if __name__ == "__main__":
    main()
