"""The `fast` preset beside airbench, in one invocation, on one machine.

airbench (github.com/KellerJordan/cifar10-airbench) is the record holder
for fast CIFAR-10 training; its `airbench94_muon.py` is the peer measured
here. You supply the peer's script (it is never copied into this
project). This script:

1. writes the peer's data files, `cifar10/train.pt` and `cifar10/test.pt`
   (uint8 NHWC `images`, int64 `labels`, `classes`), from the same
   45,000 / 5,000 split of ../shared/data that `time_to_accuracy.py`
   uses, so the peer trains on our training images and is scored on our
   validation images;
2. runs the peer with as few patches as possible and lists each one: on a
   GPU only its run count; on a CPU also its device (CUDA -> CPU, with
   CPU timers in place of CUDA events), its half precision (-> float32
   or bfloat16) and its `torch.compile` calls (-> eager);
3. trains the `fast` preset on the same split (`bench/_fast.py`);
4. prints one table: accuracy with and without TTA, training time, wall
   time and images/s of each, and the ratio of our time to the peer's.

Times: the peer's own `time_seconds` (stem whitening, training and its TTA
evaluation, after a warm-up run that compiles; its per-epoch evaluations
are not counted). Ours: stem fitting, training epochs at the steady pace
(the first epoch's compilation is left out, as the peer's warm-up leaves
it out) and the TTA evaluation. Wall times are printed too.

    python bench/peer_airbench.py ~/cifar10-airbench/airbench94_muon.py \\
        --runs 3 --seeds 0 1 --loader device --precision mixed_bfloat16

On a machine without TensorFlow (a JAX GPU machine) run it with
KERAS_BACKEND=jax and `--loader device` or `--loader array`.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN kernels on AVX2-only CPUs too (2.3x faster there).
from keras_regkit._onednn import prefer_onednn  # noqa: E402

prefer_onednn()
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import SHARED  # noqa: E402
from _machine import machine_name  # noqa: E402

# airbench94_muon.py trains with batches of 2000.
PEER_BATCH = 2000

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
           "horse", "ship", "truck"]

# The CPU timer that stands in for `torch.cuda.Event` (milliseconds).
_CPU_EVENT = '''
import time as _peer_time
class _CpuEvent:
    def __init__(self, enable_timing=True):
        self.t = None
    def record(self):
        self.t = _peer_time.perf_counter()
    def elapsed_time(self, end):
        return 1e3 * (end.t - self.t)
'''


# Where torchvision is missing (it is not in this project's test extra):
# the one piece of it the peer's training uses, `T.Normalize`.
_NORMALIZE = '''
class T:
    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std
        def __call__(self, x):
            shape = (-1, 1, 1)
            return ((x - self.mean.to(x).view(shape))
                    / self.std.to(x).view(shape))
'''


class PatchError(RuntimeError):
    pass


def _replace(text, old, new, why, patches, regex=False):
    count = len(re.findall(old, text)) if regex else text.count(old)
    if count == 0:
        raise PatchError(
            f"the peer's script has no {old!r}, which the patch '{why}' "
            "replaces: is it airbench94_muon.py (or airbench94.py)? "
            "Otherwise run the peer by hand.")
    text = re.sub(old, new, text) if regex else text.replace(old, new)
    patches.append(f"{why} ({count}x: {old!r} -> {new!r})")
    return text


def patch_peer(source, runs, device, dtype, torchvision=True):
    """Returns `(patched source, list of the patches applied)`."""
    patches = []
    text = _replace(source, r"for run in range\(\d+\)",
                    f"for run in range({runs})", "run count", patches,
                    regex=True)
    if not torchvision:
        text = _replace(text, "import torchvision\nimport torchvision."
                        "transforms as T\n", _NORMALIZE, "torchvision is "
                        "not installed: T.Normalize written out", patches)
    if device == "cuda":
        return text, patches
    text = _replace(text, '"cuda"', '"cpu"', "device: CPU", patches)
    text = _replace(text, ".cuda()", ".cpu()", "device: CPU", patches)
    text = _replace(text, "torch.cuda.Event", "_CpuEvent",
                    "timer: perf_counter for CUDA events", patches)
    text = _replace(text, "torch.cuda.synchronize()", "None",
                    "timer: nothing to synchronize on a CPU", patches)
    text = _replace(text, "import torch\n", "import torch\n" + _CPU_EVENT,
                    "timer: define the CPU event", patches)
    target = {"float32": "float", "bfloat16": "bfloat16"}[dtype]
    text = _replace(text, ".half()", f".{target}()", f"dtype: {dtype}",
                    patches)
    if "@torch.compile\n" in text:
        text = _replace(text, "@torch.compile\n", "", "eager: no "
                        "torch.compile (no compiler toolchain assumed)",
                        patches)
    text = _replace(text, r"\n(\s*)model\.compile\([^)]*\)\n",
                    r"\n\1pass  # eager\n", "eager: no model.compile",
                    patches, regex=True)
    # The warm-up run (random labels, untimed) exists to compile; eager on
    # a CPU has nothing to compile, and a whole untimed run costs as much
    # as a timed one there.
    text = _replace(text, r"\n(\s*)main\(\"warmup\", model\)\n",
                    r"\n\1pass  # eager: nothing to warm up\n",
                    "eager: no warm-up run", patches, regex=True)
    return text, patches


def write_peer_data(folder, data):
    """Writes `folder/cifar10/{train,test}.pt` in the peer's format."""
    import torch

    x_train, y_train, x_val, y_val = data
    out = Path(folder) / "cifar10"
    out.mkdir(parents=True, exist_ok=True)
    for name, x, y in (("train", x_train, y_train), ("test", x_val, y_val)):
        torch.save({"images": torch.from_numpy(np.ascontiguousarray(x)),
                    "labels": torch.from_numpy(y.astype(np.int64)),
                    "classes": CLASSES}, out / f"{name}.pt")


_ROW = re.compile(r"^\|(.*)\|\s*$")


def parse_peer_log(text):
    """Each timed run's figures from the peer's printed table.

    Returns a list of dicts with `val_acc`, `tta_val_acc` and
    `time_seconds`, the warm-up run left out.
    """
    runs, current, label = [], {}, None
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        cells = [c.strip() for c in match.group(1).split("|")]
        if len(cells) != 6 or cells[0] == "run":
            continue
        run, epoch, _, val_acc, tta, seconds = cells
        if run:
            label = run
        if epoch == "eval":
            current["tta_val_acc"] = float(tta)
            current["time_seconds"] = float(seconds)
            if label != "warmup":
                runs.append(current)
            current = {}
        elif val_acc:
            current["val_acc"] = float(val_acc)
            current["epochs"] = int(epoch) + 1
    return runs


def run_peer(script, work_dir, runs, device, dtype, data, threads=None):
    import importlib.util

    source = Path(script).read_text()
    has_torchvision = importlib.util.find_spec("torchvision") is not None
    patched, patches = patch_peer(source, runs, device, dtype,
                                  has_torchvision)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_peer_data(work_dir, data)
    target = work_dir / "peer_patched.py"
    target.write_text(patched)
    print(f"peer: {script}", flush=True)
    for patch in patches:
        print(f"  patch: {patch}", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, target.name], cwd=work_dir,
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        print(f"  peer> {line}", end="", flush=True)
        lines.append(line)
    if proc.wait() != 0:
        raise RuntimeError(f"the peer exited with status {proc.returncode}")
    wall = time.perf_counter() - start
    results = parse_peer_log("".join(lines))
    if not results:
        raise RuntimeError("found no timed run in the peer's output")
    # The peer drops the last partial batch of each epoch.
    images = (len(data[0]) // PEER_BATCH * PEER_BATCH
              * results[0]["epochs"])
    for r in results:
        r["images_per_s"] = images / r["time_seconds"]
    return results, wall, patches


def parse_variant(words):
    """`["NAME", "key=value", ...]` -> `(name, seeds or None, overrides)`.

    Values are read as YAML scalars (`epochs=8`, `optimizer=sgd_muon`,
    `lookahead=false`); `seeds=0/1` picks the variant's seeds.
    """
    import yaml

    name, seeds, overrides = words[0], None, {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise SystemExit(f"--variant {name}: {word!r} is not key=value")
        if key == "seeds":
            seeds = [int(s) for s in value.split("/")]
        else:
            overrides[key] = yaml.safe_load(value)
    return name, seeds, overrides


def run_ours(data, seeds, loader, precision, epochs, name="fast preset",
             overrides=None, save_dir=None):
    import _fast
    from keras_regkit.models.presets import get_preset

    preset = get_preset("fast", **(overrides or {}))
    results = []
    for seed in seeds:
        save_as = None if save_dir is None else (
            Path(save_dir) / f"{name.replace(' ', '_')}_seed{seed}.keras")
        r = _fast.train_once(data, preset, seed, precision, loader, epochs,
                             save_as=save_as)
        r["time_s"] = r["adapt_s"] + r["steady_train_s"] + r["tta_s"]
        r["label"] = f"{name} seed {seed}"
        r["name"] = name
        results.append(r)
        print(f"{r['label']}: acc {r['accuracy']:.4f} TTA "
              f"{r['accuracy_tta']:.4f} time {r['time_s']:.2f} s wall "
              f"{r['wall_s']:.1f} s {r['images_per_s']:.0f} img/s",
              flush=True)
    return results


def _mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def report(peer, peer_wall, ours, machine):
    print(f"\n{machine}")
    print(f"{'who':<34s} {'val acc':>8s} {'+TTA':>8s} {'time s':>8s} "
          f"{'wall s':>8s} {'img/s':>9s}")
    for i, r in enumerate(peer):
        print(f"{'airbench94_muon run ' + str(i):<34s} {r['val_acc']:8.4f} "
              f"{r['tta_val_acc']:8.4f} {r['time_seconds']:8.2f} "
              f"{'':>8s} {r['images_per_s']:9.0f}")
    if peer:
        print(f"{'airbench94_muon mean':<34s} {_mean(peer, 'val_acc'):8.4f} "
              f"{_mean(peer, 'tta_val_acc'):8.4f} "
              f"{_mean(peer, 'time_seconds'):8.2f} {peer_wall:8.1f} "
              f"{_mean(peer, 'images_per_s'):9.0f}")
    groups = {}
    for r in ours:
        groups.setdefault(r["name"], []).append(r)
        print(f"{r['label']:<34s} "
              f"{r['accuracy']:8.4f} {r['accuracy_tta']:8.4f} "
              f"{r['time_s']:8.2f} {r['wall_s']:8.1f} "
              f"{r['images_per_s']:9.0f}")
    for name, rows in groups.items():
        print(f"{name + ' mean':<34s} {_mean(rows, 'accuracy'):8.4f} "
              f"{_mean(rows, 'accuracy_tta'):8.4f} "
              f"{_mean(rows, 'time_s'):8.2f} {_mean(rows, 'wall_s'):8.1f} "
              f"{_mean(rows, 'images_per_s'):9.0f}")
    if peer and ours:
        target = _mean(peer, "tta_val_acc")
        print(f"\nour time / the peer's time (the peer's mean TTA "
              f"accuracy: {target:.4f}):")
        for name, rows in groups.items():
            ratio = _mean(rows, "time_s") / _mean(peer, "time_seconds")
            reached = _mean(rows, "accuracy_tta") >= target
            print(f"  {name}: {ratio:.2f} "
                  f"({'reaching' if reached else 'NOT reaching'} it: "
                  f"{_mean(rows, 'accuracy_tta'):.4f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer_script", nargs="?", default=None,
                        help="path of airbench94_muon.py (not bundled)")
    parser.add_argument("--runs", type=int, default=3,
                        help="the peer's timed runs (after its warm-up)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--loader", choices=("tfdata", "array", "device"),
                        default="tfdata")
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--peer-dtype", choices=("float32", "bfloat16"),
                        default=None, help="CPU only: the peer's half "
                        "precision becomes this (default: --precision's)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"),
                        default="auto")
    parser.add_argument("--epochs", type=int, default=None,
                        help="our epochs (default: the preset's)")
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--limit", type=int, default=None,
                        help="use only this many images (smoke runs)")
    parser.add_argument("--work-dir", default="runs/peer_airbench")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--skip-preset", action="store_true",
                        help="train only the --variant runs")
    parser.add_argument("--variant", nargs="+", action="append",
                        default=[], metavar="NAME_OR_KEY=VALUE",
                        help="also train the preset with these overrides, "
                        "e.g. --variant sgd10 optimizer=sgd epochs=10 "
                        "warmup_epochs=2 seeds=0/1 (repeatable)")
    parser.add_argument("--save-models", metavar="DIR", default=None,
                        help="save each of our trained models here "
                        "(NAME_seedN.keras), to score them again later")
    args = parser.parse_args(argv)
    if args.peer_script is None and args.skip_ours:
        parser.error("nothing to run: give the peer's script or drop "
                     "--skip-ours")
    if args.peer_script is not None and not Path(args.peer_script).is_file():
        parser.error(f"peer_script: {args.peer_script!r} is not a file. "
                     "Get airbench94_muon.py from "
                     "github.com/KellerJordan/cifar10-airbench.")
    if args.runs < 1:
        parser.error(f"--runs must be >= 1. Received: {args.runs}")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    from time_to_accuracy import split_cifar10  # imports Keras

    data = split_cifar10(args.data_dir, limit=args.limit)
    machine = machine_name()
    print(f"{machine}; data: {args.data_dir}, {len(data[0])} train / "
          f"{len(data[2])} validation (seeded split 0)", flush=True)
    peer, peer_wall = [], 0.0
    if args.peer_script is not None:
        dtype = args.peer_dtype or (
            "bfloat16" if args.precision == "mixed_bfloat16" else "float32")
        peer, peer_wall, _ = run_peer(args.peer_script, args.work_dir,
                                      args.runs, device, dtype, data)
    ours = []
    if not args.skip_ours:
        import keras

        print(f"ours: keras {keras.__version__} on "
              f"{keras.backend.backend()}, loader {args.loader}, "
              f"{args.precision}", flush=True)
        if not args.skip_preset:
            ours = run_ours(data, args.seeds, args.loader, args.precision,
                            args.epochs, save_dir=args.save_models)
        for words in args.variant:
            name, seeds, overrides = parse_variant(words)
            ours += run_ours(data, seeds or args.seeds, args.loader,
                             args.precision, args.epochs, name, overrides,
                             args.save_models)
    report(peer, peer_wall, ours, machine)


if __name__ == "__main__":
    main()
