"""Train one model on several workers, and check that a cluster is sound.

Run the same command on every worker, each with its own `TF_CONFIG`. Two
workers on one machine (as `tests/training/test_workers.py` runs it; on two
machines, put their host names in the list):

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
               "task": {"type": "worker", "index": 0}}' \
        python examples/multi_worker.py --run-dir runs/multi_worker &
    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
               "task": {"type": "worker", "index": 1}}' \
        python examples/multi_worker.py --run-dir runs/multi_worker

Each worker trains a narrow small-preset CNN on its half of every batch of
the embedded CIFAR-10 sample, under
`tf.distribute.MultiWorkerMirroredStrategy`, and prints the training
losses. Every worker prints the same losses, and the first epoch's equals
that of one process (the same command without `TF_CONFIG`) to float32
rounding (the test allows 1e-4 relative; later epochs drift apart slowly
as rounding compounds): the model has nothing that depends on how a batch
is split (no batch norm, no dropout, no augmentation), so a cluster that
splits data or gradients wrongly shows here at once. Worker 0 (the chief)
writes the run folder; the others write private copies in the temporary
folder and remove them. Killed, the job resumes from its last finished
epoch when every worker runs its command again; a different number of
workers is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/multi_worker",
                        help="the run folder, on storage every worker "
                        "shares (default runs/multi_worker)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="the global batch, split over the workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="200 images, 1 epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.epochs = 200, 1

    strategy = None
    if os.environ.get("TF_CONFIG"):
        # Made first: the strategy must exist before anything else runs on
        # TensorFlow.
        import tensorflow as tf

        strategy = tf.distribute.MultiWorkerMirroredStrategy()

    from keras_regkit import ProductionModelBuilder
    from keras_regkit.data import load_cifar10_sample

    (x, y), (x_val, y_val) = load_cifar10_sample()
    builder = ProductionModelBuilder(
        (32, 32, 3), 10, "small", seed=args.seed, strategy=strategy,
        conv_filters=(8, 16), dense_units=(32,), batch_norm=False,
        dropout_conv=0.0, dropout_dense=0.0, augmentation="none",
        lr_schedule="cosine", epochs=args.epochs, batch_size=args.batch_size)
    _, history = builder.train(
        x[:args.train_size], y[:args.train_size], x_val[:200], y_val[:200],
        run_dir=args.run_dir, verbose=0)
    worker = builder.worker
    losses = [round(float(v), 6) for v in history.history["loss"]]
    # `epochs_run`: the epochs this command trained (a resumed run starts
    # after its last finished one); `losses` holds every epoch's.
    print(json.dumps({"worker": worker.index, "workers": worker.count,
                      "epochs_run": list(history.epoch), "losses": losses}))
    writer = "this worker" if worker.chief else "the chief"
    print(f"worker {worker.index} of {worker.count}: training losses "
          f"{losses}; run folder {args.run_dir}, written by {writer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
