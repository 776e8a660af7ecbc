"""The Keras fast preset with train and validation images re-encoded as JPEG.

    python tools/crosscheck/fast_jpeg_recode.py N EPOCHS QUALITY [SHIFT [OVERRIDES]]

Re-encodes the first N training images and the 5,000 validation images
(4:2:0 chroma, as the data's own files), then trains the `fast` preset on
them and prints validation accuracy with and without TTA. With SHIFT > 0
each image is padded by SHIFT reflected pixels before encoding and cropped
back after decoding, so the 8x8 blocks and chroma pairs no longer line up
with those of the files' own encoding: the re-encode then loses about as
much as a first encoding at QUALITY would (re-encoding on the same grid at
the same quality changes almost nothing). OVERRIDES is a dict of builder
arguments / preset overrides, as in fast_keras_subset.py.

    python tools/crosscheck/fast_jpeg_recode.py 45000 10 75 3 "{'precision': 'mixed_bfloat16'}"
"""
from pathlib import Path
import ast, io, sys, time
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import numpy as np
from PIL import Image
import time_to_accuracy as tta_mod
from keras_regkit import ProductionModelBuilder

N, EPOCHS, QUALITY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
SHIFT = int(sys.argv[4]) if len(sys.argv) > 4 else 0
overrides = ast.literal_eval(sys.argv[5]) if len(sys.argv) > 5 else {}
x_tr, y_tr, x_val, y_val = tta_mod.split_cifar10(tta_mod.SHARED)


def recode(x):
    out = np.empty_like(x)
    for i, img in enumerate(x):
        if SHIFT:
            img = np.pad(img, ((SHIFT, SHIFT), (SHIFT, SHIFT), (0, 0)),
                         mode="reflect")
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=QUALITY, subsampling=2)
        decoded = np.asarray(Image.open(buf).convert("RGB"))
        out[i] = decoded[SHIFT:SHIFT + x.shape[1], SHIFT:SHIFT + x.shape[2]]
    return out


new_tr, new_val = recode(x_tr[:N]), recode(x_val)
change = new_val.astype("float64") - x_val
print(f"change of the validation images: RMSE {np.sqrt((change ** 2).mean()):.2f}"
      f", mean abs {np.abs(change).mean():.2f} grey levels")
t0 = time.time()
seed = overrides.pop("seed", 0)
b = ProductionModelBuilder((32, 32, 3), 10, "fast", seed=seed, **overrides)
model, _ = b.train(new_tr, y_tr[:N], epochs=EPOCHS, verbose=0)
a = b.evaluate(model, new_val, y_val)["accuracy"]
af = b.evaluate(model, new_val, y_val, tta="flip")["accuracy"]
aft = b.evaluate(model, new_val, y_val, tta="flip_translate")["accuracy"]
print(f"keras jpeg q{QUALITY} shift {SHIFT} N={N} epochs={EPOCHS} seed={seed} "
      f"{overrides}: val {a:.4f} val+flipTTA {af:.4f} val+TTA {aft:.4f} "
      f"time {time.time() - t0:.0f}s")
