"""The Keras fast preset on the same subset as fast_torch_reference.py.

    python tools/crosscheck/fast_keras_subset.py 10240 10 "{'seed': 1}"

The third argument is a dict of builder arguments / preset overrides.
"""
from pathlib import Path
import ast, sys, time
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import time_to_accuracy as tta_mod
from keras_regkit import ProductionModelBuilder
N = int(sys.argv[1]); EPOCHS = int(sys.argv[2])
overrides = ast.literal_eval(sys.argv[3]) if len(sys.argv) > 3 else {}
x_tr, y_tr, x_val, y_val = tta_mod.split_cifar10(tta_mod.SHARED)
t0 = time.time()
seed = overrides.pop("seed", 0)
b = ProductionModelBuilder((32, 32, 3), 10, "fast", seed=seed, **overrides)
model, _ = b.train(x_tr[:N], y_tr[:N], epochs=EPOCHS, verbose=0)
a = b.evaluate(model, x_val, y_val)["accuracy"]
af = b.evaluate(model, x_val, y_val, tta="flip")["accuracy"]
aft = b.evaluate(model, x_val, y_val, tta="flip_translate")["accuracy"]
print(f"keras N={N} epochs={EPOCHS} {overrides}: val {a:.4f} val+flipTTA {af:.4f} val+TTA {aft:.4f} time {time.time() - t0:.0f}s")
