"""Data files shipped with keras_regkit.

`cifar10_sample.tar.gz`: 2,000 training and 500 validation CIFAR-10 images
(200 and 50 per class), drawn stratified with a fixed seed from the official
training split and stored as the original JPEG files in a folder-per-class
tree (`train/<class>/NNNN.jpg`, `val/<class>/NNNN.jpg`; `NNNN` is the image's
index within its class in the source). Built by `tools/make_sample.py`; read
it with `keras_regkit.data.load_cifar10_sample()`.
"""
