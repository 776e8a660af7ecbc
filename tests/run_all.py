"""Runs the whole test suite the way CI does: once per Keras backend.

Keras fixes its backend at import, so each backend gets its own pytest
process, and each runs the whole `tests` folder. Tests that need
TensorFlow itself (tf.data, tf.distribute, TensorFlow-only APIs) carry the
`requires_tensorflow` marker and are skipped, with the reason, on JAX and
PyTorch; everything else runs on all three. Tests that read the real
CIFAR-10 data carry `requires_data` (see tests/conftest.py).
Extra arguments are passed to every pytest run (e.g. `-x`, `-k name`).
The passes run side by side, the later ones at the lowest priority, and
each pass's output is printed once it has ended (see `_side_by_side`);
`REGKIT_TEST_SERIAL=1` runs them one after another.

A backend whose package is not installed (torch is not in the test extra:
PyPI's default build is CUDA, several GB) is left out with a line saying
how to add it; with `REGKIT_REQUIRE_BACKENDS=1`, which `.ci/run` sets, a
missing backend fails the run instead.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
HOW_TO_INSTALL = {
    "tensorflow": 'pip install -e ".[test]"',
    "jax": 'pip install -e ".[test]"',
    "torch": ("pip install torch --index-url "
              "https://download.pytorch.org/whl/cpu  (the CPU build)"),
}


def _counts(report):
    suite = ET.parse(report).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def _worker_args():
    """pytest-xdist arguments: one worker per core, whole files per worker.

    Most tests leave a core idle (Python overhead, compilation, subprocess
    start-up), so two workers on two cores finish a pass about 1.4x sooner.
    `--dist loadfile` keeps each file on one worker, so module fixtures
    (a trained model shared by a file's tests) are built once.
    `--no-loadscope-reorder` keeps the collection order, which
    tests/conftest.py sets longest file first; xdist's default would order
    files by their number of tests, and send the few-test, long files
    (subprocess runs, the wheel build) last.
    `REGKIT_TEST_WORKERS=0` runs in one process; a number sets the count.
    A third worker on two cores gained nothing: the whole suite took 671 s
    with three against 640 s with two, back to back (2 AVX512-BF16 AMD
    EPYC cores, 2026-12-02).
    """
    wanted = os.environ.get("REGKIT_TEST_WORKERS", "auto")
    if importlib.util.find_spec("xdist") is None:
        return []
    if wanted == "auto":
        workers = min(_cores(), 4)
    else:
        workers = int(wanted)
    if workers < 2:
        return []
    return ["-n", str(workers), "--dist", "loadfile",
            "--no-loadscope-reorder"]


def _cpu_name():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from _machine import cpu_name

        return cpu_name()
    finally:
        sys.path.pop(0)


def _pass_env(backend, workers):
    """The environment of `backend`'s pass, and its JAX cache folder."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Byte code is cached (in `__pycache__` folders, which git ignores)
    # even where PYTHONDONTWRITEBYTECODE is set, as some containers do:
    # without the cache, pytest rewrote the asserts of all ~170 test files
    # again in every worker of every pass, and every subprocess a test
    # starts compiled keras_regkit again (the PyTorch pass took 40.6 s with
    # the variable set, 37.4 s without; 2 AMX Xeon cores).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if backend == "torch" and workers:
        # One thread per worker: PyTorch otherwise starts a thread per core
        # in each worker, and the two workers' threads fight over the cores
        # (the PyTorch pass's slowest files took 98 s with that, 54 s
        # without, on 2 AVX2 cores). TensorFlow and JAX gained nothing from
        # the same limit.
        env.setdefault("OMP_NUM_THREADS",
                       str(max(1, _cores() // int(workers[1]))))
    cache = None
    if backend == "jax" and "JAX_COMPILATION_CACHE_DIR" not in env:
        # Many tests compile the same small models: a compilation cache that
        # the pass's workers (and the processes its tests start) share, every
        # entry kept, compiles each one once. On 2 AVX2 cores it took a JAX
        # run of the callback, layer, loss and optimizer tests from 151-242 s
        # to 119-133 s. It starts empty and is removed after the pass:
        # nothing is reused across runs.
        cache = tempfile.mkdtemp(prefix="regkit-jax-cache-")
        env.update(JAX_COMPILATION_CACHE_DIR=cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env, cache


def _cores():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _side_by_side():
    """Whether the passes run at once (the default) or one after another.

    At once, the first pass (TensorFlow, the longest) runs at normal
    priority and the others at the lowest (`nice 19`): they take the cores
    only when it leaves one idle (a worker collecting alone, waiting on a
    subprocess, or done while the other finishes), and run at full speed
    once it has ended. The work is the same; the idle time is filled. On 2
    AMX Xeon cores the whole suite took 307 s so (the cores 99% busy)
    against 320-325 s one pass after another (94% busy), in runs minutes
    apart (the machine's speed varies by up to 10%), with about 5 GB of
    memory in use at the peak. A background process is slowed, not
    starved: while two TensorFlow workers ran tests, a `nice 19` process
    got about a third of a core (2 CPU-s in 6.2 s), so the subprocesses
    that the JAX and PyTorch passes start stay far inside their 120-300 s
    timeouts. `REGKIT_TEST_SERIAL=1` runs one pass after another,
    with each pass's output as it comes and its own time.
    """
    return (os.environ.get("REGKIT_TEST_SERIAL", "") in ("", "0")
            and hasattr(os, "nice"))


def _lowest_priority():
    os.nice(19)


def main(argv):
    totals = [0, 0, 0]
    ok = True
    # Every time below depends on the kind of CPU (the same version of the
    # suite took 2.8x as long on 2 AVX2-only Zen 3 cores as on 2 cores of
    # an Intel Xeon with AMX): name it with them.
    machine = _cpu_name()
    print(f"machine: {machine}", flush=True)
    started = time.monotonic()
    require = os.environ.get("REGKIT_REQUIRE_BACKENDS") == "1"
    together = _side_by_side()
    passes = []
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed, its pass is left out; to add "
                  f"it: {HOW_TO_INSTALL[backend]}", flush=True)
            ok = ok and not require
            continue
        passes.append(backend)
    if together and len(passes) > 1:
        print(f"running the {', '.join(passes)} passes side by side (all "
              f"but the first at the lowest priority); each pass's output "
              f"follows once it has ended (REGKIT_TEST_SERIAL=1: one after "
              f"another)", flush=True)
    workers = _worker_args()
    running = {}
    try:
        for index, backend in enumerate(passes):
            report = ROOT / ".pytest_cache" / f"junit-{backend}.xml"
            report.parent.mkdir(exist_ok=True)
            report.unlink(missing_ok=True)
            env, cache = _pass_env(backend, workers)
            cmd = [sys.executable, "-m", "pytest", "-q",
                   f"--junitxml={report}", *workers, "tests", *argv]
            log = None
            options = {}
            if together:
                log = ROOT / ".pytest_cache" / f"output-{backend}.txt"
                options["stderr"] = subprocess.STDOUT
                if index > 0:
                    options["preexec_fn"] = _lowest_priority
            else:
                print(f"=== KERAS_BACKEND={backend}: tests", flush=True)
            with (open(log, "w") if log else open(os.devnull)) as out:
                if log:
                    options["stdout"] = out
                process = subprocess.Popen(cmd, cwd=ROOT, env=env, **options)
            running[backend] = (process, time.monotonic(), report, cache, log)
            if not together:
                ok = _finish(backend, running.pop(backend), totals) and ok
        for backend in list(running):
            ok = _finish(backend, running.pop(backend), totals) and ok
    finally:
        for process, *_ in running.values():  # interrupted: stop the rest
            process.kill()
            process.wait()
    passed, failed, skipped = totals
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped in "
          f"{time.monotonic() - started:.0f} s ({machine})")
    return 0 if ok and failed == 0 and passed > 0 else 1


def _finish(backend, started_pass, totals):
    """Waits for one pass, prints its output and counts; True if it passed."""
    process, start, report, cache, log = started_pass
    try:
        code = process.wait()
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    seconds = time.monotonic() - start
    if log is not None:
        print(f"=== KERAS_BACKEND={backend}: tests", flush=True)
        print(log.read_text(errors="replace"), end="", flush=True)
    ok = code == 0 and report.exists()
    if report.exists():
        counts = _counts(report)
        print(f"{backend}: {counts[0]} passed, {counts[1]} failed, "
              f"{counts[2]} skipped in {seconds:.0f} s", flush=True)
        for i, n in enumerate(counts):
            totals[i] += n
    return ok


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
