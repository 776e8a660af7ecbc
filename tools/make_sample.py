"""Builds the CIFAR-10 sample embedded in keras_regkit, reproducibly.

Draws 250 images per class (200 for `train/`, 50 for `val/`) with a fixed
seed from the official training split in
`../shared/data/cifar10_train_jpeg.tar.gz`, and stores the original JPEG
files unchanged (no re-encoding) in a deterministic `.tar.gz` (sorted
members, fixed times and owners, gzip header without a timestamp), so the
same input always gives byte-identical output.

Usage:

    python tools/make_sample.py            # writes the sample
    python tools/make_sample.py --check    # rebuilds in memory and compares
"""

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "cifar10_train_jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "keras_regkit" / "data" / "cifar10_sample.tar.gz"
SOURCE_SHA256 = (
    "bb033266dbb26aa71223ff120c0df4e7d3943dbd93b9e65984876854c6234931"
)
CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
SEED = 2024
TRAIN_PER_CLASS = 200
VAL_PER_CLASS = 50
_MTIME = 1577836800  # 2020-01-01, the source archive's member time


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_source(source):
    """Returns `{class: {file name: jpeg bytes}}` of the training split."""
    files = {name: {} for name in CLASS_NAMES}
    with tarfile.open(source, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if (member.isfile() and len(parts) == 3 and parts[0] == "train"
                    and parts[1] in files and parts[2].endswith(".jpg")):
                files[parts[1]][parts[2]] = tar.extractfile(member).read()
    return files


def select(files, seed=SEED):
    """Stratified, seeded choice: `{(split, class, name): bytes}`."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for cls in CLASS_NAMES:
        names = sorted(files[cls])
        picks = rng.choice(len(names), TRAIN_PER_CLASS + VAL_PER_CLASS,
                           replace=False)
        for i, index in enumerate(picks):
            split = "train" if i < TRAIN_PER_CLASS else "val"
            chosen[(split, cls, names[index])] = files[cls][names[index]]
    return chosen


def build_archive(chosen):
    """Returns the bytes of a deterministic `.tar.gz` of the chosen files."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w",
                      format=tarfile.USTAR_FORMAT) as tar:
        for split, cls, name in sorted(chosen):
            data = chosen[(split, cls, name)]
            info = tarfile.TarInfo(f"{split}/{cls}/{name}")
            info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0,
                       compresslevel=9) as handle:
        handle.write(tar_bytes.getvalue())
    return out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="compare a fresh build with --output")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"source archive not found: {args.source}")
    digest = sha256(args.source)
    if digest != SOURCE_SHA256:
        print(f"warning: {args.source} has sha256 {digest}, not the "
              f"expected {SOURCE_SHA256}", file=sys.stderr)
    data = build_archive(select(read_source(args.source)))
    new_digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = args.output.is_file() and sha256(args.output) == new_digest
        print(f"{args.output}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output}: {len(data) / 1e6:.2f} MB, "
          f"{TRAIN_PER_CLASS * 10} train + {VAL_PER_CLASS * 10} val images, "
          f"sha256 {new_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
