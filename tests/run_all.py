"""Runs the whole test suite the way CI does.

Everything runs on the TensorFlow backend of Keras 3; the building blocks
(layers, regularizers, constraints, losses) run again on JAX and PyTorch.
Each backend needs its own process because Keras fixes the backend at import.
Extra arguments are passed to every pytest run (e.g. `-x`, `-k name`).
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TESTS = [
    "tests/layers",
    "tests/test_regularizers.py",
    "tests/test_constraints.py",
    "tests/test_losses.py",
    "tests/test_properties.py",
    "tests/test_initializers.py",
    "tests/callbacks/test_lookahead.py",
    "tests/data/test_array_loader.py",
    "tests/data/test_alternating_flip.py",
]
RUNS = [
    ("tensorflow", ["tests"]),
    ("jax", BLOCK_TESTS),
    ("torch", BLOCK_TESTS),
]


def _counts(report):
    suite = ET.parse(report).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def main(argv):
    totals = [0, 0, 0]
    ok = True
    for backend, paths in RUNS:
        paths = [p for p in paths if (ROOT / p).exists()]
        report = ROOT / ".pytest_cache" / f"junit-{backend}.xml"
        report.parent.mkdir(exist_ok=True)
        env = dict(os.environ, KERAS_BACKEND=backend)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        print(f"=== KERAS_BACKEND={backend}: {' '.join(paths)}", flush=True)
        cmd = [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}"]
        code = subprocess.call(cmd + paths + list(argv), cwd=ROOT, env=env)
        if code not in (0,) or not report.exists():
            ok = False
        if report.exists():
            for i, n in enumerate(_counts(report)):
                totals[i] += n
    passed, failed, skipped = totals
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok and failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
