"""Training-step cost of each keras_regkit block against its Keras equivalent.

Builds one small CIFAR-10 CNN (two conv stages of 32 and 64 filters, a
residual conv block, Dense 128, softmax) per variant, where a variant puts
one keras_regkit block, or the nearest Keras layer, loss or regularizer, in
the same place. Every model trains on the same real images (the embedded
sample) with the same batch size. The models take turns: after a warm-up
(tracing) each runs a chunk of steps in turn, over many rounds, a block
right next to its baseline, so slow and busy periods of a shared machine
fall on both alike. Each step is timed on its own (`train_on_batch`
returns numbers, so it waits for the step). The table gives the median
step time of block and baseline; "ratio", the one held to the target, is
the median over rounds of the per-round ratio block / baseline, which
cancels load that changes between rounds; "of medians" is the plain ratio
of the two medians, which does not. The "A/A" row times two copies of the
same Dropout network: its distance from 1.00 is the noise of the run.

    python bench/bench_layers.py                  # TensorFlow, no XLA
    python bench/bench_layers.py --jit            # jit_compile=True
    python bench/bench_layers.py --steps 240 --pairs control dropblock
    KERAS_BACKEND=jax python bench/bench_layers.py --jit

The backend is TensorFlow unless KERAS_BACKEND says otherwise. With
`--jit` on a CPU, TensorFlow's XLA draws random numbers of the default
algorithm (`alg="auto_select"`) very slowly, in Keras's own layers too, so
there the cost of a block follows how many numbers it draws per step: a
kernel-sized mask (DropConnect, GaussianWeightNoise) shows up against an
activation-sized one (Dropout, GaussianNoise).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_regkit as rk  # noqa: E402
from keras_regkit.data import load_cifar10_sample  # noqa: E402

TARGET = 1.15
SEED = 0
L = keras.layers


def _dense(reg):
    return L.Dense(128, activation="relu", kernel_regularizer=reg)


# The dense part of the network: flattened features -> 128 features.
HEADS = {
    "plain": lambda x, reg: _dense(reg)(x),
    "dropout": lambda x, reg: L.Dropout(0.5, seed=SEED)(_dense(reg)(x)),
    "mc_dropout": lambda x, reg: rk.MCDropout(0.5, seed=SEED)(_dense(reg)(x)),
    "drop_connect": lambda x, reg: rk.DropConnect(
        _dense(reg), rate=0.5, seed=SEED)(x),
    "drop_connect_dense": lambda x, reg: rk.DropConnectDense(
        128, rate=0.5, activation="relu", kernel_regularizer=reg,
        seed=SEED)(x),
    "gaussian_noise": lambda x, reg: _dense(reg)(
        L.GaussianNoise(0.1, seed=SEED)(x)),
    "weight_noise": lambda x, reg: rk.GaussianWeightNoise(
        _dense(reg), stddev=0.01, seed=SEED)(x),
    "input_dropout": lambda x, reg: _dense(reg)(L.Dropout(0.1, seed=SEED)(x)),
    "concrete": lambda x, reg: rk.ConcreteDropout(_dense(reg), seed=SEED)(x),
}

# name -> what differs from the plain network (conv_drop after each conv
# stage, branch_drop on the residual branch, head, loss, regularizer).
VARIANTS = {
    "plain": {},
    "dropout": {"head": "dropout"},
    "dropout_copy": {"head": "dropout"},
    "mc_dropout": {"head": "mc_dropout"},
    "spatial_dropout": {"conv_drop": lambda: L.SpatialDropout2D(
        0.1, seed=SEED)},
    "mc_spatial_dropout": {"conv_drop": lambda: rk.MCSpatialDropout2D(
        0.1, seed=SEED)},
    "drop_block": {"conv_drop": lambda: rk.DropBlock2D(
        0.1, block_size=3, seed=SEED)},
    "branch_dropout": {"branch_drop": lambda: L.Dropout(0.1, seed=SEED)},
    "stochastic_depth": {"branch_drop": lambda: rk.StochasticDepth(
        0.1, seed=SEED)},
    "drop_connect": {"head": "drop_connect"},
    "drop_connect_dense": {"head": "drop_connect_dense"},
    "gaussian_noise": {"head": "gaussian_noise"},
    "weight_noise": {"head": "weight_noise"},
    "input_dropout": {"head": "input_dropout"},
    "concrete": {"head": "concrete"},
    "keras_ls": {"loss": lambda: keras.losses.CategoricalCrossentropy(
        label_smoothing=0.1)},
    "regkit_ls": {"loss": lambda: rk.LabelSmoothingCrossEntropy(0.1)},
    "l1l2": {"regularizer": lambda: keras.regularizers.L1L2(1e-5, 1e-4)},
    "elastic_net": {"regularizer": lambda: rk.ElasticNet(1e-5, 1e-4)},
    "group_lasso": {"regularizer": lambda: rk.GroupLasso(1e-4)},
}

# key -> (row label, keras_regkit variant, Keras baseline variant)
PAIRS = {
    "control": ("A/A: Dropout / the same Dropout network", "dropout_copy",
                "dropout"),
    "mc_dropout": ("MCDropout / Dropout", "mc_dropout", "dropout"),
    "mc_spatial": ("MCSpatialDropout2D / SpatialDropout2D",
                   "mc_spatial_dropout", "spatial_dropout"),
    "dropblock": ("DropBlock2D / SpatialDropout2D", "drop_block",
                  "spatial_dropout"),
    "stochastic_depth": ("StochasticDepth / Dropout (branch)",
                         "stochastic_depth", "branch_dropout"),
    "drop_connect": ("DropConnect(Dense) / Dense+Dropout", "drop_connect",
                     "dropout"),
    "drop_connect_dense": ("DropConnectDense / Dense+Dropout",
                           "drop_connect_dense", "dropout"),
    "weight_noise": ("GaussianWeightNoise(Dense) / GaussianNoise",
                     "weight_noise", "gaussian_noise"),
    "concrete": ("ConcreteDropout(Dense) / Dropout+Dense", "concrete",
                 "input_dropout"),
    "label_smoothing": ("LabelSmoothingCE / CCE(label_smoothing)",
                        "regkit_ls", "keras_ls"),
    "elastic_net": ("ElasticNet / L1L2", "elastic_net", "l1l2"),
    "group_lasso": ("GroupLasso / L1L2", "group_lasso", "l1l2"),
}


def build_model(spec, jit=False):
    """The benchmark CNN with `spec`'s blocks in place, compiled."""
    regularizer = spec.get("regularizer")

    def reg():
        return regularizer() if regularizer else None

    def conv(filters):
        return L.Conv2D(filters, 3, padding="same", activation="relu",
                        kernel_regularizer=reg())

    inputs = keras.Input((32, 32, 3))
    x = inputs
    for filters in (32, 64):
        x = L.MaxPooling2D()(conv(filters)(x))
        if "conv_drop" in spec:
            x = spec["conv_drop"]()(x)
    branch = conv(64)(x)
    if "branch_drop" in spec:
        branch = spec["branch_drop"]()(branch)
    x = L.Flatten()(L.Add()([x, branch]))
    x = HEADS[spec.get("head", "plain")](x, reg())
    outputs = L.Dense(10, activation="softmax", kernel_regularizer=reg())(x)
    model = keras.Model(inputs, outputs)
    loss = spec.get("loss", keras.losses.CategoricalCrossentropy)()
    model.compile(keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit)
    return model


def make_batches(batch_size, count=16):
    """`count` batches of real CIFAR-10 images (float32 [0, 1], one-hot)."""
    (x, y), _ = load_cifar10_sample()
    x = x[: batch_size * count].astype("float32") / 255.0
    y = keras.utils.to_categorical(y[: batch_size * count].ravel(), 10)
    return [
        (keras.ops.convert_to_tensor(x[i:i + batch_size]),
         keras.ops.convert_to_tensor(y[i:i + batch_size].astype("float32")))
        for i in range(0, len(x), batch_size)
    ]


def run_steps(model, batches, start, count):
    """Runs `count` training steps; returns each step's seconds."""
    times = []
    for i in range(count):
        x, y = batches[(start + i) % len(batches)]
        begin = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - begin)
    return times


def interleaved_times(models, pairs, batches, steps, chunk, warmup):
    """Round-robin timing of every pair, the two sides of a pair adjacent.

    A round runs, pair after pair, a chunk of the block's model and a chunk
    of its baseline's (the first pair rotates between rounds and the side
    that goes first alternates). Returns `{label: (block_rounds,
    baseline_rounds)}`, each a list per round of step seconds.
    """
    for model in models.values():  # tracing (and XLA compilation) here
        run_steps(model, batches, 0, warmup)
    rounds = -(-steps // chunk)
    times = {label: ([], []) for label, _, _ in pairs}
    for r in range(rounds):
        count = min(chunk, steps - r * chunk)
        start = warmup + r * chunk
        shift = r % len(pairs)
        for label, block, base in pairs[shift:] + pairs[:shift]:
            sides = [(0, block), (1, base)]
            for side, name in sides if r % 2 == 0 else sides[::-1]:
                times[label][side].append(
                    run_steps(models[name], batches, start, count))
    return times


def summarize(times):
    """Rows (label, block ms, keras ms, paired ratio, ratio of medians)."""
    rows = []
    for label, (block, base) in times.items():
        block_ms = 1e3 * statistics.median(sum(block, []))
        base_ms = 1e3 * statistics.median(sum(base, []))
        paired = statistics.median(
            statistics.median(b) / statistics.median(k)
            for b, k in zip(block, base))
        rows.append((label, block_ms, base_ms, paired, block_ms / base_ms))
    return rows


def print_table(rows, title):
    print(f"\n{title}")
    header = (f"| {'block / Keras equivalent':<43} | {'block ms':>8} | "
              f"{'keras ms':>8} | {'ratio':>5} | {'of medians':>10} | "
              f"<= {TARGET} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1])
          + "|")
    for label, block_ms, base_ms, ratio, of_medians in rows:
        ok = "yes" if ratio <= TARGET else "NO"
        print(f"| {label:<43} | {block_ms:>8.1f} | {base_ms:>8.1f} | "
              f"{ratio:>5.2f} | {of_medians:>10.2f} | {ok:>7} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120,
                        help="measured steps per model (default 120)")
    parser.add_argument("--chunk", type=int, default=2,
                        help="steps per model per round (default 2)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per model first (default 3)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--jit", action="store_true",
                        help="compile with jit_compile=True (XLA)")
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS),
                        default=list(PAIRS), help="pairs to run (all)")
    args = parser.parse_args(argv)
    if min(args.steps, args.chunk, args.batch_size) < 1 or args.warmup < 1:
        parser.error("--steps, --chunk, --warmup and --batch-size must be "
                     ">= 1")

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only to quiet its retracing warnings

        tf.get_logger().setLevel("ERROR")
    pairs = [PAIRS[key] for key in args.pairs]
    names = sorted({name for _, block, base in pairs for name in (block,
                                                                   base)})
    keras.utils.set_random_seed(SEED)
    batches = make_batches(args.batch_size)
    print(f"backend {keras.backend.backend()}, jit_compile={args.jit}, "
          f"batch {args.batch_size}, {args.steps} timed steps per model in "
          f"chunks of {args.chunk} (after {args.warmup} warm-up steps), "
          f"{len(names)} models, {os.cpu_count()} CPUs")
    start = time.perf_counter()
    models = {name: build_model(VARIANTS[name], args.jit) for name in names}
    times = interleaved_times(models, pairs, batches, args.steps, args.chunk,
                              args.warmup)
    rows = summarize(times)
    print_table(rows, f"Median training-step time, ratio = block / Keras "
                f"(target <= {TARGET})")
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    over = [row[0] for row in rows if row[3] > TARGET]
    print("all ratios within target" if not over
          else "over target: " + "; ".join(over))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
