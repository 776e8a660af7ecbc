"""Runs bench/time_to_accuracy.py with TensorFlow made unimportable (as on a
JAX-only GPU machine); run from the repository root."""
from pathlib import Path
import importlib.abc, runpy, sys


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.argv = ["bench/time_to_accuracy.py"] + sys.argv[1:]
runpy.run_path("bench/time_to_accuracy.py", run_name="__main__")
assert "tensorflow" not in sys.modules
print("no tensorflow imported")
