"""The `fast` preset's benchmark: `time_to_accuracy.py --capacity fast`.

For each seed: train the preset for its epochs (8) on the 45,000 training
images, then report validation accuracy on the 5,000 held-out images with
and without test-time augmentation, the wall time (stem fitting, compile,
training and evaluation) and the training throughput (images/s and GFLOP/s,
epochs after the first, which compiles). `--ablate` trains the preset again
with each trick switched off, one at a time, and prints the table.

Three input paths train the same model with the same recipe:
`--loader tfdata` goes through `ProductionModelBuilder` and its tf.data
pipeline (TensorFlow backend); `--loader array` uses `ArrayLoader` and the
TensorFlow-free recipe functions (any backend); `--loader device` (JAX
only) keeps the data and the augmentation on the device
(`DeviceArrayLoader`), runs Lookahead inside the compiled step
(`LookaheadOptimizer`) and a whole epoch per execution, so no training
step waits for the host.
"""

import time
from pathlib import Path

import keras
import numpy as np

from keras_regkit.models.fast_net import adapt_fast_net
from keras_regkit.models.fast_net import build_fast_net
from keras_regkit.models.presets import get_preset
from keras_regkit.training.recipe import compile_for_preset
from keras_regkit.training.recipe import trick_callbacks
from keras_regkit.training.tta import tta_predict

# Each ablation switches one trick of the full preset off.
ABLATIONS = {
    "whitening": {"stem_whitening": False},
    "dirac_init": {"dirac_init": False},
    "bias_lr_64x": {"bias_lr_multiplier": 1.0},
    "lookahead": {"lookahead": False},
    "muon": {"optimizer": "sgd"},  # Nesterov SGD for the filters too
    "alternating_flip": {"augmentation": "flip_translate2"},
    "label_smoothing": {"label_smoothing": 0.0},
}
TTA = "flip_translate"


def training_gflop_per_image(model):
    """Training cost per image: 3x the forward multiply-adds x 2, in GFLOP.

    Counts every convolution (the stem included) and dense layer from their
    kernels and output sizes; the backward pass costs about twice the
    forward one.
    """
    forward = 0
    for layer in model._flatten_layers(include_self=False):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(layer, "output"):
            continue
        shape = tuple(kernel.shape)
        out = layer.output.shape
        positions = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        forward += 2 * positions * int(np.prod(shape))
    return 3 * forward / 1e9


class EpochTimer(keras.callbacks.Callback):
    """Training seconds of each epoch (validation excluded)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def _stop(self):
        if self._start is not None:
            # JAX dispatches steps ahead: wait until the last one is done.
            keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


def _accuracy(probs, labels):
    return float((np.argmax(probs, -1) == labels).mean())


def train_once(data, preset, seed, precision="float32", loader="tfdata",
               epochs=None, verbose=0, jit_compile="auto", save_as=None):
    """Trains the preset once; returns its figures as a dict.

    `save_as`: a `.keras` path to save the trained model to (after the
    timings), so that it can be scored again without training.
    """
    x_train, y_train, x_val, y_val = data
    preset = get_preset(preset)
    adapt_s = 0.0  # the builder adapts the stem inside `train`
    epochs = epochs or preset.epochs
    timer = EpochTimer()
    start = time.perf_counter()
    if loader == "tfdata":
        from keras_regkit import ProductionModelBuilder

        builder = ProductionModelBuilder((32, 32, 3), 10, preset, seed=seed,
                                         precision=precision)
        model, _ = builder.train(x_train, y_train, epochs=epochs,
                                 verbose=verbose, callbacks=[timer],
                                 jit_compile=jit_compile)
        batches = len(x_train) // preset.batch_size  # last partial dropped
    else:
        from keras_regkit.data.array_loader import ArrayLoader
        from keras_regkit.data.device_loader import DeviceArrayLoader

        keras.utils.set_random_seed(seed)
        keras.mixed_precision.set_global_policy(precision)
        try:
            model = build_fast_net((32, 32, 3), 10, preset)
            if precision != "float32":
                outputs = keras.layers.Activation(
                    "linear", dtype="float32")(model.output)
                model = keras.Model(model.input, outputs)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        adapt_start = time.perf_counter()
        adapt_fast_net(model, x_train)
        adapt_s = time.perf_counter() - adapt_start
        if loader == "device":
            train = DeviceArrayLoader(
                x_train, y_train, preset.batch_size, training=True,
                augmentation=preset.augmentation, num_classes=10, seed=seed,
                dtype="float32" if precision == "float32" else
                precision.split("_")[-1])
            lookahead, per_execution = "optimizer", len(train)
        else:
            train = ArrayLoader(x_train, y_train, preset.batch_size,
                                training=True,
                                augmentation=preset.augmentation,
                                num_classes=10, seed=seed)
            lookahead, per_execution = "callback", 1
        batches = len(train)
        compile_for_preset(model, preset, 10, steps_per_epoch=batches,
                           epochs=epochs, jit_compile=jit_compile,
                           steps_per_execution=per_execution,
                           lookahead=lookahead)
        if loader == "array" and keras.backend.backend() == "tensorflow":
            # As the builder feeds it: Keras's own adapter autotunes.
            from keras_regkit.data.pipeline import loader_dataset

            train = loader_dataset(train)
        model.fit(train, epochs=epochs, verbose=verbose,
                  callbacks=trick_callbacks(preset, lookahead) + [timer])
    x_val = x_val.astype("float32") / 255.0
    probs = tta_predict(model, x_val, batch_size=1000, tta=False)
    tta_start = time.perf_counter()
    probs_tta = tta_predict(model, x_val, batch_size=1000, tta=TTA)
    tta_s = time.perf_counter() - tta_start
    wall = time.perf_counter() - start
    steady = timer.seconds[1:] or timer.seconds
    images_per_s = batches * preset.batch_size * len(steady) / sum(steady)
    # Training time without the first epoch's compilation: every epoch at
    # the steady pace (what a warmed-up process would take).
    steady_train_s = len(timer.seconds) * sum(steady) / len(steady)
    gflop = training_gflop_per_image(model)
    if save_as is not None:
        Path(save_as).parent.mkdir(parents=True, exist_ok=True)
        model.save(save_as)
    return {
        "accuracy": _accuracy(probs, y_val),
        "accuracy_tta": _accuracy(probs_tta, y_val),
        "wall_s": wall,
        "train_s": sum(timer.seconds),
        "steady_train_s": steady_train_s,
        "adapt_s": adapt_s,
        "tta_s": tta_s,
        "images_per_s": images_per_s,
        "gflop_per_s": images_per_s * gflop,
        "gflop_per_image": gflop,
    }


def report_auto_precision(speeds):
    """Prints what `precision="auto"` picks beside the measured faster one."""
    pair = ("float32", "mixed_bfloat16")
    if not set(pair) <= set(speeds):
        return
    from keras_regkit.training.precision import resolve_precision

    auto = resolve_precision("auto")
    faster = max(pair, key=speeds.__getitem__)
    print(f"precision='auto' picks {auto.name}: {auto.reason}")
    print(f"the fast preset trained faster in {faster} here "
          f"(float32 {speeds['float32']:.0f} img/s, mixed_bfloat16 "
          f"{speeds['mixed_bfloat16']:.0f} img/s): 'auto' "
          f"{'agrees' if auto.name == faster else 'DISAGREES'}", flush=True)


def _line(label, r):
    return (f"{label:<34s} acc {r['accuracy']:.4f}  acc+TTA "
            f"{r['accuracy_tta']:.4f}  wall {r['wall_s']:7.1f} s  train "
            f"{r['train_s']:7.1f} s  {r['images_per_s']:8.0f} img/s  "
            f"{r['gflop_per_s']:7.1f} GFLOP/s")


def run(data, seeds, precisions, ablate, loader, epochs=None,
        throughput_epochs=None, verbose=0, jit_compile="auto"):
    """Prints the seeds' figures, the throughput and the ablation table."""
    preset = get_preset("fast")
    print(f"device: keras backend {keras.backend.backend()}, loader "
          f"{loader}, jit_compile {jit_compile}, {len(data[0])} train / "
          f"{len(data[2])} validation",
          flush=True)
    results = []
    for seed in seeds:
        r = train_once(data, preset, seed, precisions[0], loader, epochs,
                       verbose, jit_compile)
        results.append(r)
        print(_line(f"fast seed {seed} ({precisions[0]})", r), flush=True)
    mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
    print(_line(f"fast mean of {len(seeds)} seeds", mean), flush=True)
    print(f"training cost: {mean['gflop_per_image']:.3f} GFLOP per image",
          flush=True)
    speeds = {precisions[0]: mean["images_per_s"]}
    for precision in precisions[1:]:
        # Throughput of another precision: a shorter run is enough.
        r = train_once(data, preset, seeds[0], precision, loader,
                       throughput_epochs or epochs, verbose, jit_compile)
        speeds[precision] = r["images_per_s"]
        print(_line(f"fast seed {seeds[0]} ({precision})", r), flush=True)
    report_auto_precision(speeds)
    if not ablate:
        return results
    rows = [("full preset", mean)]
    for trick, change in ABLATIONS.items():
        r = train_once(data, preset.replace(**change), seeds[0],
                       precisions[0], loader, epochs, verbose, jit_compile)
        rows.append((f"without {trick}", r))
        print(_line(f"without {trick} (seed {seeds[0]})", r), flush=True)
    print("\nablation (each row switches one trick off; TTA column shows "
          "the TTA trick):")
    print(f"{'run':<26s} {'val acc':>8s} {'+TTA':>8s} {'wall s':>8s}")
    for label, r in rows:
        print(f"{label:<26s} {r['accuracy']:8.4f} {r['accuracy_tta']:8.4f} "
              f"{r['wall_s']:8.1f}")
    return results
