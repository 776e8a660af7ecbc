"""How much of the fast net's training step is its convolutions' own time?

The step of the `fast` preset (its network, its optimizer, batch 1024, on
in-memory images) is timed beside the same network's convolutions alone:
each convolution's forward pass, and its forward and backward passes
(gradients for its input and its kernel), at the shapes the network gives
it. The rest of the step is batch norm, GELU, pooling, the loss and the
optimizer, and whatever the convolutions lose inside the graph (cores
shared with ops that run beside them). The convolutions alone, in
GFLOP/s, are the ceiling: with every other op free, a step would still
take their time.

Everything runs in one process on TensorFlow (oneDNN), round-robin over
`--rounds` rounds, so a slow spell of a shared machine falls on every
figure alike; each figure is the median over the rounds.

`--profile DIR` also runs TensorFlow's profiler over three steps of each
precision and prints where the step's op time goes, by op type.
`--compare-layers` also times the step of the same network built from
Keras's own `BatchNormalization` and `Activation("gelu")`, in place of the
`FusedBatchNormalization` and `GELU` it uses. `--compare-kernel-gradients`
also times the step with TensorFlow's own kernel-gradient op in every
`FastConv2D` (`kernel_gradient="native"`), and each convolution's kernel
gradient alone both ways: TensorFlow's `Conv2DBackpropFilter` and
`shifted_kernel_gradient`'s matmuls.

    python bench/bench_ceiling.py
    python bench/bench_ceiling.py --precisions mixed_bfloat16 --rounds 5 \\
        --profile /tmp/ceiling_profile
    python bench/bench_ceiling.py --precisions mixed_bfloat16 --compare-layers
    python bench/bench_ceiling.py --precisions mixed_bfloat16 float32 \\
        --compare-kernel-gradients

Name the CPU (model and flags) with every figure: the script prints it.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "keras" not in sys.modules:  # TensorFlow's kernels are the subject
    os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_regkit._onednn import prefer_onednn  # noqa: E402

prefer_onednn()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _fast import training_gflop_per_image  # noqa: E402
from _machine import machine_name  # noqa: E402

from keras_regkit.layers import GELU  # noqa: E402
from keras_regkit.layers import FastConv2D  # noqa: E402
from keras_regkit.layers import FusedBatchNormalization  # noqa: E402
from keras_regkit.layers.fast_kernels import (  # noqa: E402
    shifted_kernel_gradient)
from keras_regkit.models.fast_net import build_fast_net  # noqa: E402
from keras_regkit.models.presets import get_preset  # noqa: E402
from keras_regkit.training.recipe import compile_for_preset  # noqa: E402


def _seconds(fn, repeats):
    """Median seconds of one call of `fn` (results fetched to the host)."""
    fn()  # warm-up: tracing and oneDNN primitive creation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if isinstance(result, (list, tuple)):
            for tensor in result:
                tensor.numpy()
        elif hasattr(result, "numpy"):
            result.numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _keras_layer(layer):
    """`layer` made afresh, as Keras's own layer where it has one."""
    config = layer.get_config()
    if isinstance(layer, FusedBatchNormalization):
        return keras.layers.BatchNormalization.from_config(config)
    if isinstance(layer, GELU):
        return keras.layers.Activation(
            keras.activations.gelu, name=layer.name,
            dtype=layer.dtype_policy)
    return layer.__class__.from_config(config)


def build_step(precision, batch, optimizer, keras_layers=False,
               kernel_gradient=None):
    """The preset's network, compiled as the preset compiles it.

    With `keras_layers`, its batch norm and GELU layers are Keras's own;
    `kernel_gradient` sets every `FastConv2D`'s (default: the layer's
    own, `"auto"`).
    """
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_fast_net((32, 32, 3), 10, "fast")
        if keras_layers:
            model = keras.models.clone_model(model,
                                             clone_function=_keras_layer)
        if precision != "float32":
            outputs = keras.layers.Activation("linear", dtype="float32")(
                model.output)
            model = keras.Model(model.input, outputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if kernel_gradient is not None:  # read when the step is first traced
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, FastConv2D):
                layer.kernel_gradient = kernel_gradient
    compile_for_preset(model, get_preset("fast", optimizer=optimizer), 10,
                       steps_per_epoch=100, epochs=10, jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.random((batch, 32, 32, 3), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return model, lambda: model.train_on_batch(x, y, return_dict=True)


def conv_shapes(model, batch):
    """(input shape, kernel shape, padding) of every Conv2D of `model`."""
    shapes = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            shapes.append(((batch,) + tuple(layer.input.shape[1:]),
                           tuple(layer.kernel.shape), layer.padding.upper()))
    return shapes


def random_operands(shapes, dtype):
    """Random inputs and kernel variables of the convolutions' shapes."""
    rng = np.random.default_rng(1)
    inputs = [tf.constant(rng.standard_normal(x), dtype)
              for x, _, _ in shapes]
    kernels = [tf.Variable(tf.constant(rng.standard_normal(k) * 0.05, dtype))
               for _, k, _ in shapes]
    return inputs, kernels


def conv_fns(inputs, kernels, paddings):
    """`(forward, forward_and_backward)` over all the convolutions.

    `forward()` returns each output's sum; `forward_and_backward()` the sums
    of each input's and kernel's gradient for a loss that sums the outputs.
    """

    @tf.function
    def forward():
        return [tf.reduce_sum(tf.nn.conv2d(x, k, 1, p))
                for x, k, p in zip(inputs, kernels, paddings)]

    @tf.function
    def forward_and_backward():
        grads = []
        for x, k, p in zip(inputs, kernels, paddings):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.nn.conv2d(x, k, 1, p))
            dx, dk = tape.gradient(loss, [x, k])
            grads += [tf.reduce_sum(dx), tf.reduce_sum(dk)]
        return grads

    return forward, forward_and_backward


def kernel_gradient_fns(inputs, kernels, paddings):
    """`[(TensorFlow's op, the shifted matmuls)]`, one pair a convolution.

    Each function returns the kernel's gradient for an upstream gradient
    of ones (any values cost the same).
    """
    pairs = []
    for x, k, p in zip(inputs, kernels, paddings):
        upstream = tf.ones(tf.nn.conv2d(x[:1], k, 1, p).shape[1:], x.dtype)
        upstream = tf.tile(upstream[None], [x.shape[0], 1, 1, 1])
        shape = tuple(k.shape.as_list())

        def native(x=x, upstream=upstream, shape=shape, p=p):
            return tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=shape, out_backprop=upstream,
                strides=[1, 1, 1, 1], padding=p)

        def shifted(x=x, upstream=upstream, shape=shape, p=p):
            return shifted_kernel_gradient(x, upstream, shape, p.lower())

        pairs.append((tf.function(native), tf.function(shifted)))
    return pairs


def conv_gflop(shapes, model):
    """Forward GFLOP of all the convolutions for one batch."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            total += 2 * int(np.prod(out[1:-1])) * int(
                np.prod(layer.kernel.shape))
    return total * shapes[0][0][0] / 1e9


def profile_step(step, steps, logdir):
    """Seconds of op time per step, by op type, from TensorFlow's profiler.

    Op time adds up the ops' own durations on every executor thread; ops
    that run side by side overlap, so it can exceed the step's wall time.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    step()
    tf.profiler.experimental.start(str(logdir))
    try:
        for _ in range(steps):
            step()
    finally:
        tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(max(Path(logdir).rglob("*.xplane.pb"),
                              key=lambda f: f.stat().st_mtime).read_bytes())
    by_type = {}
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names[event.metadata_id].name
                # Ops are "scope/op:OpType"; the executor's own events
                # ("ExecutorState::Process") span the ops they run.
                if ":" in name and "::" not in name:
                    kind = name.rsplit(":", 1)[1]
                    by_type[kind] = (by_type.get(kind, 0.0)
                                     + event.duration_ps / 1e12 / steps)
    return by_type


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", nargs="+",
                        default=["mixed_bfloat16", "float32"],
                        choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--optimizer", default=get_preset("fast").optimizer,
                        help="the step's optimizer (default: the preset's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls of each figure per round")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="also profile 3 steps of each precision into "
                        "DIR and print the op time by op type")
    parser.add_argument("--compare-layers", action="store_true",
                        help="also time the step with Keras's own batch "
                        "norm and GELU layers")
    parser.add_argument("--compare-kernel-gradients", action="store_true",
                        help="also time the step with TensorFlow's own "
                        "kernel-gradient op in every FastConv2D, and each "
                        "convolution's kernel gradient both ways")
    args = parser.parse_args(argv)
    figures = ("step",) + (("keras_step",) if args.compare_layers else ()) + (
        ("native_step",) if args.compare_kernel_gradients else ()) + (
        "forward", "both")

    print(machine_name())
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, batch "
          f"{args.batch}, optimizer {args.optimizer}")
    cases = {}
    for precision in args.precisions:
        model, step = build_step(precision, args.batch, args.optimizer)
        shapes = conv_shapes(model, args.batch)
        dtype = tf.float32 if precision == "float32" else tf.bfloat16
        inputs, kernels = random_operands(shapes, dtype)
        forward, both = conv_fns(inputs, kernels, [p for _, _, p in shapes])
        cases[precision] = {
            "step": step, "forward": forward, "both": both,
            "keras_step": (build_step(precision, args.batch, args.optimizer,
                                      keras_layers=True)[1]
                           if args.compare_layers else None),
            "native_step": (build_step(precision, args.batch, args.optimizer,
                                       kernel_gradient="native")[1]
                            if args.compare_kernel_gradients else None),
            "gradients": (kernel_gradient_fns(inputs, kernels,
                                              [p for _, _, p in shapes])
                          if args.compare_kernel_gradients else []),
            "shapes": shapes,
            "step_gflop": training_gflop_per_image(model) * args.batch,
            "forward_gflop": conv_gflop(shapes, model),
        }
    times = {p: {k: [] for k in figures} for p in cases}
    gradient_times = {p: [([], []) for _ in c["gradients"]]
                      for p, c in cases.items()}
    for _ in range(args.rounds):
        for precision, case in cases.items():
            for key in figures:
                times[precision][key].append(
                    _seconds(case[key], args.repeats))
            for pair, (native, shifted) in zip(gradient_times[precision],
                                               case["gradients"]):
                pair[0].append(_seconds(native, args.repeats))
                pair[1].append(_seconds(shifted, args.repeats))
    print(f"\n{'precision':<16s} {'what':<44s} {'s/batch':>8s} "
          f"{'GFLOP/s':>8s} {'share':>6s}")
    for precision, case in cases.items():
        t = {k: statistics.median(v) for k, v in times[precision].items()}
        rows = (
            ("training step (the network, loss, optimizer)", t["step"],
             case["step_gflop"]),
            ("its convolutions, forward", t["forward"],
             case["forward_gflop"]),
            ("its convolutions, forward + backward", t["both"],
             3 * case["forward_gflop"]),
        )
        if "keras_step" in t:
            rows += (("step with Keras's BatchNormalization and gelu",
                      t["keras_step"], case["step_gflop"]),)
        if "native_step" in t:
            rows += (("step with TensorFlow's kernel-gradient op",
                      t["native_step"], case["step_gflop"]),)
        for what, seconds, gflop in rows:
            print(f"{precision:<16s} {what:<44s} {seconds:8.3f} "
                  f"{gflop / seconds:8.0f} {seconds / t['step']:6.2f}")
        print(f"{precision:<16s} {'step img/s':<44s} "
              f"{args.batch / t['step']:8.0f}")
    if args.compare_kernel_gradients:
        print(f"\n{'precision':<16s} {'kernel gradient of':<34s} "
              f"{'op ms':>8s} {'matmuls ms':>10s} {'op/matmuls':>10s}")
        for precision, case in cases.items():
            for (x, k, _), (native, shifted) in zip(
                    case["shapes"], gradient_times[precision]):
                op_ms = 1e3 * statistics.median(native)
                mm_ms = 1e3 * statistics.median(shifted)
                what = f"{x[1]}x{x[2]}x{x[3]} -> {k[3]}"
                print(f"{precision:<16s} {what:<34s} {op_ms:8.1f} "
                      f"{mm_ms:10.1f} {op_ms / mm_ms:10.2f}")
    if args.profile:
        for precision, case in cases.items():
            by_type = profile_step(case["step"], 3,
                                   Path(args.profile) / precision)
            total = sum(by_type.values())
            print(f"\n{precision}: op time {total:.3f} s a step, by op type")
            for kind, seconds in sorted(by_type.items(),
                                        key=lambda kv: -kv[1])[:12]:
                print(f"  {kind:<36s} {seconds:7.3f} s {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
