"""The Keras fast preset with train and validation images re-encoded as JPEG.

    python tools/crosscheck/fast_jpeg_recode.py 10240 10 50
"""
from pathlib import Path
import io, sys, time
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import numpy as np
from PIL import Image
import time_to_accuracy as tta_mod
from keras_regkit import ProductionModelBuilder
N, EPOCHS, QUALITY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
x_tr, y_tr, x_val, y_val = tta_mod.split_cifar10(tta_mod.SHARED)
def recode(x):
    out = np.empty_like(x)
    for i, img in enumerate(x):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=QUALITY, subsampling=2)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out
x_tr, x_val = recode(x_tr[:N]), recode(x_val)
print("mean abs change", float(np.abs(x_val.astype(int) - tta_mod.split_cifar10(tta_mod.SHARED)[2].astype(int)).mean()))
t0 = time.time()
b = ProductionModelBuilder((32, 32, 3), 10, "fast", seed=0)
model, _ = b.train(x_tr, y_tr[:N], epochs=EPOCHS, verbose=0)
a = b.evaluate(model, x_val, y_val)["accuracy"]
af = b.evaluate(model, x_val, y_val, tta="flip")["accuracy"]
print(f"keras jpeg q{QUALITY} N={N} epochs={EPOCHS}: val {a:.4f} val+flipTTA {af:.4f} time {time.time() - t0:.0f}s")
