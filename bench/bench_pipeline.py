"""Throughput of the tf.data input pipeline alone, in images per second.

Measures `make_dataset` (gather, uint8 -> float32, per-batch augmentation,
optional MixUp/CutMix, prefetch) with no model attached, for each
augmentation policy. `pipeline_throughput(...)` is the reusable part, for
comparing with a model's training step.

    python bench/bench_pipeline.py                  # the embedded sample
    python bench/bench_pipeline.py --data full      # ../shared/data, 50k
    python bench/bench_pipeline.py --policies none standard --mix
    python bench/bench_pipeline.py --model medium   # against a training step

With `--model`, it also times the preset's training step alone (one batch
held in memory, `train_on_batch`) and training through the pipeline
(`fit` on the preset's own augmented dataset), and prints the ratio of
the pipeline's throughput to the model's: the pipeline must sustain at
least 5x what the model consumes, so that it never starves training.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_regkit.data import AUGMENTATION_POLICIES  # noqa: E402
from keras_regkit.data import load_cifar10  # noqa: E402
from keras_regkit.data import load_cifar10_sample  # noqa: E402
from keras_regkit.data import make_dataset  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pipeline_throughput(x, y, batch_size=128, augmentation="standard",
                        mix=None, num_classes=10, num_batches=100, warmup=5,
                        seed=0, **dataset_kwargs):
    """Times the training pipeline alone and returns its throughput.

    Iterates `warmup` batches (tracing, buffers filling), then times
    `num_batches` batches, cycling over epochs when the data runs out.

    Args:
        x: uint8 images (N, 32, 32, 3).
        y: integer or one-hot labels.
        batch_size: images per batch. Defaults to `128`.
        augmentation: a policy name, a layer or `None`. Defaults to
            `"standard"`.
        mix: `None` or `{"mixup_alpha": a, "cutmix_alpha": b}`. Defaults to
            `None`.
        num_classes: for one-hot labels. Defaults to `10`.
        num_batches: batches timed. Defaults to `100`.
        warmup: batches run before timing. Defaults to `5`.
        seed: pipeline seed. Defaults to `0`.
        **dataset_kwargs: passed on to `make_dataset`.

    Returns:
        A dict with `images_per_s`, `seconds`, `images` and `batches`.
    """
    dataset = make_dataset(x, y, batch_size, training=True,
                           augmentation=augmentation, mix=mix,
                           num_classes=num_classes, seed=seed,
                           **dataset_kwargs).repeat()
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        batch, _ = next(iterator)
        images += int(batch.shape[0])
    batch.numpy()  # wait for the last batch to be materialized
    seconds = time.perf_counter() - start
    return {"images_per_s": images / seconds, "seconds": seconds,
            "images": images, "batches": num_batches}


def model_throughput(x, y, capacity="medium", steps=30, warmup=3, seed=0):
    """Training throughput of a preset's model, without and with the pipeline.

    Returns a dict with `step_images_per_s` (train_on_batch on one batch in
    memory), `fit_images_per_s` (fit through the builder's augmented
    tf.data pipeline) and `batch_size`.
    """
    import keras
    import numpy as np

    from keras_regkit import ProductionModelBuilder

    builder = ProductionModelBuilder((32, 32, 3), 10, capacity, seed=seed)
    batch = builder.preset.batch_size
    model = builder.compile_model(builder.build_model())
    xb = x[:batch].astype("float32") / 255.0
    yb = keras.utils.to_categorical(np.asarray(y[:batch]).reshape(-1), 10)
    for _ in range(warmup):
        model.train_on_batch(xb, yb)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(xb, yb)
    step_rate = steps * batch / (time.perf_counter() - start)
    dataset = builder.make_dataset(x, y, batch, training=True).repeat()
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0,
              shuffle=False)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0,
              shuffle=False)
    fit_rate = steps * batch / (time.perf_counter() - start)
    return {"step_images_per_s": step_rate, "fit_images_per_s": fit_rate,
            "batch_size": batch, "policy": builder.preset.augmentation}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("sample", "full"),
                        default="sample")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--policies", nargs="+",
                        default=list(AUGMENTATION_POLICIES),
                        choices=AUGMENTATION_POLICIES)
    parser.add_argument("--mix", action="store_true",
                        help="also time MixUp 0.2 + CutMix 1.0")
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--model", default=None,
                        help="a preset (e.g. medium) whose training step the "
                        "pipeline is compared with")
    args = parser.parse_args(argv)

    if args.data == "full":
        (x, y), _ = load_cifar10(args.data_dir)
    else:
        (x, y), _ = load_cifar10_sample()
    print(f"data: {args.data} ({len(x)} images), batch {args.batch_size}, "
          f"{args.batches} batches, {os.cpu_count()} CPUs, deterministic="
          f"{args.deterministic}")
    mixes = [None] + ([{"mixup_alpha": 0.2, "cutmix_alpha": 1.0}]
                      if args.mix else [])
    print(f"{'policy':<16}{'mix':<6}{'images/s':>12}")
    for policy in args.policies:
        for mix in mixes:
            result = pipeline_throughput(
                x, y, args.batch_size, augmentation=policy, mix=mix,
                num_batches=args.batches, deterministic=args.deterministic)
            print(f"{policy:<16}{'yes' if mix else 'no':<6}"
                  f"{result['images_per_s']:>12,.0f}")
    if args.model:
        model = model_throughput(x, y, args.model)
        pipe = pipeline_throughput(
            x, y, model["batch_size"], augmentation=model["policy"],
            num_batches=args.batches, deterministic=args.deterministic)
        ratio = pipe["images_per_s"] / model["step_images_per_s"]
        print(f"\n{args.model} preset, batch {model['batch_size']}, "
              f"augmentation {model['policy']!r}:")
        print(f"  pipeline alone           {pipe['images_per_s']:>10,.0f} "
              "images/s")
        print(f"  training step alone      {model['step_images_per_s']:>10,.0f}"
              " images/s")
        print(f"  training through pipeline {model['fit_images_per_s']:>9,.0f}"
              " images/s")
        print(f"  pipeline / training step  {ratio:>9.1f}x "
              f"({'meets' if ratio >= 5 else 'below'} the 5x bar)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
