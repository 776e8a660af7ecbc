"""Packaging: `python -m build` makes an sdist and a wheel that work.

The sdist and the wheel are built once per module, offline, from a copy of
the files the build reads (so the repository gets no build/ or egg-info
from this test), the wheel from the sdist as `python -m build` does. The
wheel is then installed into a fresh virtual environment, and its `regkit`
command trains one epoch on the sample shipped inside it from a folder
outside the repository.

Every test here is `backend_independent`: packaging does not depend on the
Keras backend, so they run once, in the TensorFlow pass (which
`regkit train` needs anyway).
"""

import importlib.metadata
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import pytest

import keras_regkit

REPO = Path(__file__).resolve().parent.parent
SAMPLE = "keras_regkit/data/cifar10_sample.tar.gz"
# The files the build reads: the metadata, what it names (README, LICENSE),
# MANIFEST.in and what it adds (CHANGELOG), and the package.
BUILD_INPUTS = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE",
                "CHANGELOG.md", "keras_regkit")
# The wheel measured 1,001,350 bytes (about 1.0 MB) for 0.1.0, of which the
# embedded sample is 810,591; the bound leaves room for the code to grow
# and still catches data, tests or models that should not ship.
WHEEL_MAX_BYTES = 1_500_000

pytestmark = pytest.mark.backend_independent


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """`(sdist, wheel)` built offline from a copy of the build inputs."""
    base = tmp_path_factory.mktemp("build")
    src = base / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.py[cod]"))
        else:
            shutil.copy2(path, src / name)
    out = base / "dist"
    # --no-isolation: the build uses this environment's setuptools and
    # wheel (the test extra names them) instead of downloading them. Without
    # --sdist/--wheel, build makes the sdist and then the wheel from it, so
    # this also proves the sdist holds what rebuilding needs.
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir",
         str(out), str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_sdist_holds_what_rebuilding_needs(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames()
                 if "/" in name}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md",
                   SAMPLE, "keras_regkit/py.typed",
                   "keras_regkit/__init__.py", "keras_regkit/cli/train.py"):
        assert needed in names
    assert not [n for n in names if n.startswith(("tests/", "bench/",
                                                  "examples/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_holds_the_package_the_sample_and_py_typed(dists):
    _, wheel = dists
    size = wheel.stat().st_size
    assert (REPO / SAMPLE).stat().st_size < size <= WHEEL_MAX_BYTES
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        assert whl.read(SAMPLE) == (REPO / SAMPLE).read_bytes()
        assert "keras_regkit/py.typed" in names
        metadata = whl.read(next(n for n in names
                                 if n.endswith(".dist-info/METADATA")))
    # Only the package and its metadata: no tests, benchmarks, examples,
    # configs, tools or caches.
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"keras_regkit",
                    f"keras_regkit-{keras_regkit.__version__}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # The license text ships in the wheel's metadata.
    assert f"keras_regkit-{keras_regkit.__version__}.dist-info/licenses/" \
        "LICENSE" in names
    text = metadata.decode()
    # The backend extras exist, and the test extra names no torch build
    # (the PyTorch pass runs when torch is installed some other way).
    for extra in ("jax", "torch", "test"):
        assert f"Provides-Extra: {extra}\n" in text
    requires = [line.removeprefix("Requires-Dist: ")
                for line in text.splitlines()
                if line.startswith("Requires-Dist: ")]

    def extra(name):
        return [line for line in requires if f'extra == "{name}"' in line]

    assert [line for line in extra("jax") if line.startswith("jax")]
    assert [line for line in extra("torch") if line.startswith("torch")]
    assert extra("test")
    assert not [line for line in extra("test") if "torch" in line]


def _make_venv(path, wheel):
    """A fresh virtual environment at `path` with the wheel installed.

    Returns its site-packages folder.
    """
    pip = importlib.util.find_spec("pip")
    pip_version = (tuple(int(p) for p in importlib.metadata.version(
        "pip").split(".")[:2]) if pip else (0, 0))
    # This environment's pip (>= 22.3) can install into another interpreter
    # (`--python`), which saves the ~10 s of putting pip into the new one.
    use_own_pip = pip_version >= (22, 3)
    venv.EnvBuilder(with_pip=not use_own_pip).create(path)
    python = path / "bin" / "python"
    command = ([sys.executable, "-m", "pip", "--python", str(python)]
               if use_own_pip else [str(python), "-m", "pip"])
    # Installed before the environment can see any other package (below),
    # so pip cannot find this environment's editable keras_regkit and
    # decide it is "already installed".
    proc = subprocess.run(
        command + ["install", "--no-deps", "--no-index",
                   "--disable-pip-version-check", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (site_packages,) = path.glob("lib/python*/site-packages")
    # The dependencies (TensorFlow, Keras, ...) come from this test
    # environment, not from a download. `--system-site-packages` cannot
    # give them: it links the base interpreter's site-packages, not those
    # of the virtual environment running the tests (here and in CI both).
    # A .pth file that names this environment's site-packages folders
    # appends them to the new sys.path, after the new environment's own
    # site-packages, so the wheel's keras_regkit is found first. A plain
    # path line does not run the .pth files in those folders, so the
    # editable install's import hook (an `import ...finder; install()`
    # line there) is never installed in the new environment.
    folders = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        folders.append(site.getusersitepackages())
    (site_packages / "zz_test_environment.pth").write_text(
        "".join(f"{folder}\n" for folder in folders))
    return site_packages


@pytest.mark.slow
def test_installed_wheel_trains_on_the_embedded_sample(dists, tmp_path):
    _, wheel = dists
    env_dir = tmp_path / "venv"
    site_packages = _make_venv(env_dir, wheel)
    bin_dir = env_dir / "bin"
    work = tmp_path / "work"  # the cwd: outside the repository
    work.mkdir()
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONNOUSERSITE="1")
    # Nothing may put the repository (or another copy) before the wheel's.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)

    def run(*args, timeout=120):
        proc = subprocess.run([str(a) for a in args], cwd=work, env=env,
                              capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, (proc.stdout[-3000:]
                                      + proc.stderr[-3000:])
        return proc.stdout

    # The keras_regkit that `import` finds in the new environment is the
    # wheel's copy (find_spec locates it without importing TensorFlow).
    origin = run(bin_dir / "python", "-c",
                 "import importlib.util; print(importlib.util.find_spec("
                 "'keras_regkit').origin)").strip()
    assert Path(origin).resolve() == (
        site_packages / "keras_regkit" / "__init__.py").resolve()
    assert (site_packages / SAMPLE).is_file()

    version = run(bin_dir / "regkit", "--version").strip()
    assert version == f"regkit {keras_regkit.__version__}"

    # The smallest run the command offers: a two-conv-layer preset from
    # --config, one epoch, batch 128, on the 2,000 + 500 embedded images.
    from keras_regkit.models.presets import get_preset

    config = work / "tiny.yaml"
    get_preset("small", conv_filters=(8, 16), dense_units=(32,)).to_yaml(
        config)
    start = time.perf_counter()
    out = run(bin_dir / "regkit", "train", "--config", config, "--epochs",
              "1", "--batch-size", "128", "--out", "run", "--verbose", "0",
              timeout=600)
    seconds = time.perf_counter() - start
    print(f"regkit train --epochs 1 from the wheel: {seconds:.1f} s")
    assert "embedded sample" in out
    assert "validation accuracy" in out
    run_dir = work / "run"
    for name in ("config.yaml", "history.csv", "final_model.keras",
                 "best_model.keras", "summary.json"):
        assert (run_dir / name).is_file(), name
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 2  # the header and one epoch
