"""Shared test helpers for keras_regkit (not Keras's private harness).

`check_layer` runs the checks every public layer must pass: output shape,
weight counts, seed generators, losses, the config round trip, `.keras`
save/load with identical inference outputs, one training step inside
`model.fit` (also with `jit_compile=True` on TensorFlow) and a call under a
mixed-precision policy. The rest are small pieces several test files share:
synthetic inputs, the real CIFAR-10 reader behind the data fixtures, CIFAR
batch files written to disk, and probes of what this backend and CPU can do.

This module is not a test module: test files import from it, never from one
another or from `conftest.py`.
"""

import functools
import io
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

import keras

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# The reference recipe's `reg_config` of each capacity, exactly as it gives it.
REFERENCE_REG_CONFIGS = {
    "small": dict(l2=1e-5, dropout_dense=0.2, dropout_conv=0.1,
                  batch_norm=True, early_stopping_patience=20,
                  label_smoothing=0.0),
    "medium": dict(l2=1e-4, dropout_dense=0.4, dropout_conv=0.2,
                   batch_norm=True, early_stopping_patience=15,
                   label_smoothing=0.05),
    "large": dict(l2=1e-3, dropout_dense=0.5, dropout_conv=0.3,
                  batch_norm=True, early_stopping_patience=10,
                  label_smoothing=0.1),
}


# Synthetic inputs: for tests where any tensor would do.


def random_images(n=64, shape=(32, 32, 3), seed=0):
    """`n` float32 images of uniform noise in [0, 1), seeded."""
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n,) + tuple(shape)).astype("float32")


def random_batch(n=64, shape=(32, 32, 3), num_classes=10, seed=0):
    """`(images, labels)`: `random_images` and int64 labels, seeded."""
    rng = np.random.default_rng(seed + 1)
    labels = rng.integers(0, num_classes, size=n).astype("int64")
    return random_images(n, shape, seed), labels


# The real CIFAR-10 data behind the fixtures in conftest.py.


def shared_data_dir():
    """The folder holding `cifar10_train_jpeg.tar.gz` (../shared/data)."""
    override = os.environ.get("REGKIT_SHARED_DATA")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "data"


def read_jpeg_subset(archive, per_class):
    """The first `per_class` JPEGs of each class, class by class.

    Returns `(x, y)`: uint8 images `(N, 32, 32, 3)` and int64 labels.
    """
    from PIL import Image

    images = {name: [] for name in CLASS_NAMES}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            parts = member.name.split("/")
            cls, stem = parts[-2], parts[-1][:-4]
            if cls not in images or int(stem) >= per_class:
                continue
            data = tar.extractfile(member).read()
            with Image.open(io.BytesIO(data)) as img:
                images[cls].append((int(stem), np.asarray(img.convert("RGB"))))
    xs, ys = [], []
    for label, name in enumerate(CLASS_NAMES):
        for _, arr in sorted(images[name], key=lambda item: item[0]):
            xs.append(arr)
            ys.append(label)
    return np.stack(xs).astype("uint8"), np.asarray(ys, dtype="int64")


# CIFAR-10 in the pickled `cifar-10-batches-py` layout.

PER_BATCH = 20  # images in each batch file that `write_cifar_batches` writes


def cifar_batch_bytes(x, y, protocol=4):
    """One pickled CIFAR-10 batch dict holding images `x` and labels `y`."""
    data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    batch = {b"batch_label": b"test", b"labels": [int(v) for v in y],
             b"data": data, b"filenames": [b"img.png"] * len(x)}
    return pickle.dumps(batch, protocol=protocol)


def write_cifar_batches(folder, x, y, numpy1=False):
    """A canonical `cifar-10-batches-py` folder: 5 x 20 train, 20 test.

    Batch `i` holds images `x[20 * i:20 * (i + 1)]`; the test batch follows
    the five training batches. With `numpy1` the pickles name NumPy 1's
    module, as files written by NumPy 1 do.
    """
    from keras_regkit.data import _formats

    folder.mkdir(parents=True)
    names = list(_formats.TRAIN_BATCHES) + [_formats.TEST_BATCH]
    for i, name in enumerate(names):
        part = slice(i * PER_BATCH, (i + 1) * PER_BATCH)
        data = cifar_batch_bytes(x[part], y[part], protocol=2 if numpy1 else 4)
        if numpy1:  # protocol 2 names globals as text: write NumPy 1's name
            data = data.replace(b"numpy._core.multiarray",
                                b"numpy.core.multiarray")
        (folder / name).write_bytes(data)
    meta = {b"label_names": [n.encode() for n in CLASS_NAMES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def match_shift(images, sources, pixels=2):
    """Which orientation and shift of its source each image is.

    An image matches when it equals a crop of its source (or of the mirrored
    source) padded by `pixels` with reflected borders (edge repeated).

    Returns:
        `(matches, offsets)`: `matches` bool (2, N), row 1 for the mirrored
        source; `offsets` the set of matching `(row, col)` crop offsets.
    """
    pad = ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0))
    h, w = images.shape[1:3]
    matches = np.zeros((2, len(images)), bool)
    offsets = set()
    for flipped in (0, 1):
        src = sources[:, :, ::-1] if flipped else sources
        padded = np.pad(src, pad, mode="symmetric")
        for a in range(2 * pixels + 1):
            for b in range(2 * pixels + 1):
                equal = np.all(padded[:, a:a + h, b:b + w] == images,
                               axis=(1, 2, 3))
                matches[flipped] |= equal
                if equal.any():
                    offsets.add((a, b))
    return matches, offsets


# What this backend can run on this machine (probed once, cached).


def _error_summary(exc):
    """The exception's type and the first line of its backend message."""
    text = re.sub(r"\x1b\[[0-9;]*m|\{\{[^}]*\}\}", "", str(exc))
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("Exception encountered")]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


@functools.cache
def channels_first_conv_error():
    """`None` if a channels_first Conv2D runs here, else the error's text.

    TensorFlow's CPU Conv2D supports only NHWC on some CPUs ("The Conv2D op
    currently only supports the NHWC tensor format on the CPU"); JAX and
    PyTorch run NCHW everywhere.
    """
    try:
        x, kernel = np.ones((1, 1, 2, 2), "float32"), np.ones((1, 1, 1, 1))
        keras.ops.convert_to_numpy(keras.ops.conv(
            x, kernel.astype("float32"), data_format="channels_first"))
    except Exception as exc:  # the backend's own error type
        return _error_summary(exc)
    return None


def require_channels_first_conv():
    """Skips the calling test where a channels_first Conv2D cannot run."""
    error = channels_first_conv_error()
    if error is not None:
        pytest.skip(
            f"the {keras.backend.backend()} backend cannot run a "
            f"channels_first Conv2D on this machine ({error})"
        )


@functools.cache
def mixed_precision_policy():
    """`mixed_float16` if float16 convolutions run here, else bfloat16.

    Some CPU builds have no float16 convolution kernel; `mixed_bfloat16` is
    then the mixed policy a CPU user would pick.
    """
    try:
        x = keras.ops.ones((1, 4, 4, 2), dtype="float16")
        kernel = keras.ops.ones((3, 3, 2, 2), dtype="float16")
        out = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel))
        if not np.all(out == 18.0):
            return "mixed_bfloat16"
    except Exception:  # the backend's own error type
        return "mixed_bfloat16"
    return "mixed_float16"


# Floating-point error bounds.


def conv_rounding_bound(max_abs_input, kernel, bias=None):
    """Worst-case float32 rounding error of each output channel of a conv.

    A float32 sum of `n` products differs from the exact one by at most
    `gamma_n * sum(|terms|)`, `gamma_n = n * u / (1 - n * u)`, whatever the
    order of summation, with or without fused multiply-adds (u = eps / 2,
    the unit roundoff; Higham, "Accuracy and Stability of Numerical
    Algorithms", 2002, eq. 3.5). An output channel of a convolution sums
    `n = kh * kw * c_in` products (one more term with the bias), each at most
    `max_abs_input * |w|`. The bound scales with the size of the terms, not
    with the result, which can be much smaller when they cancel.

    Args:
        max_abs_input: the largest `|x|` the convolution sees.
        kernel: the float32 kernel `(..., c_in, filters)`.
        bias: optional float32 bias `(filters,)` added after the sum.

    Returns:
        A float64 array `(filters,)`: the bound for each output channel.
    """
    kernel = np.abs(np.asarray(kernel, np.float64))
    w = kernel.reshape(-1, kernel.shape[-1])
    total = max_abs_input * w.sum(axis=0)
    n = w.shape[0]
    if bias is not None:
        total = total + np.abs(np.asarray(bias, np.float64))
        n += 1
    u = np.finfo(np.float32).eps / 2
    return n * u / (1 - n * u) * total


# The standard building-block checks.


def count_seed_states(layer):
    """Number of SeedGenerator state variables tracked by `layer`."""
    names = [v.path for v in layer.non_trainable_variables]
    return sum(1 for name in names if "seed_generator" in name)


def roundtrip_config(obj):
    """Rebuilds `obj` from its config and checks the config is unchanged."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    return clone


def save_and_reload(model, tmp_path, name="model.keras"):
    """Saves `model` to `.keras` and loads it back (default safe_mode)."""
    path = tmp_path / name
    model.save(path)
    return keras.saving.load_model(path)


def _fresh(value):
    """A new, unbuilt copy of a layer argument (wrapped layers); else as is.

    The copy drops the original's name and dtype policy, so it takes the
    global policy in force when it is made.
    """
    if not isinstance(value, keras.layers.Layer):
        return value
    config = value.get_config()
    config.pop("name", None)
    config.pop("dtype", None)
    return type(value).from_config(config)


def _dtype_name(tensor):
    return keras.backend.standardize_dtype(tensor.dtype)


def _is_float(dtype):
    return keras.backend.is_float_dtype(keras.backend.standardize_dtype(dtype))


def check_mixed_precision(layer_cls, init_kwargs, input_data,
                          policy=None):
    """Calls a fresh layer under a mixed policy, as Keras's layer tests do.

    The global dtype policy is set to `policy` (default:
    `mixed_precision_policy()`) while the layer, and any layer passed in
    `init_kwargs`, is made and called on float32 inputs in inference and in
    training; it is restored after. Float outputs must have the policy's
    compute dtype and be finite; float variables keep float32.
    """
    policy = policy or mixed_precision_policy()
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        layer = layer_cls(**{k: _fresh(v) for k, v in init_kwargs.items()})
        compute_dtype = keras.config.dtype_policy().compute_dtype
        outputs = [layer(input_data, training=False),
                   layer(input_data, training=True)]
    finally:
        keras.config.set_dtype_policy(before)
    assert layer.compute_dtype == compute_dtype
    for out in outputs:
        assert _dtype_name(out) == compute_dtype, (
            f"{layer_cls.__name__} under {policy} returned {out.dtype}")
        values = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
        assert np.all(np.isfinite(values))
    for variable in layer.weights:
        if _is_float(variable.dtype):
            assert keras.backend.standardize_dtype(variable.dtype) == "float32"
    return layer


def check_layer(
    layer_cls,
    init_kwargs,
    input_shape,
    tmp_path,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    expected_num_seed_generators=None,
    expected_num_losses=0,
    run_training=True,
    run_mixed_precision_check=True,
    input_data=None,
):
    """Runs the standard building-block checks on a layer class.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments. A layer among them (the layer a
            wrapper wraps) is copied afresh for every layer made.
        input_shape: full input shape including the batch dimension.
        tmp_path: pytest's temporary folder for `.keras` files.
        expected_output_shape: full expected output shape; defaults to
            `input_shape`.
        expected_num_trainable_weights: expected `len(trainable_weights)`.
        expected_num_non_trainable_weights: expected
            `len(non_trainable_weights)`.
        expected_num_seed_generators: expected number of seed states.
        expected_num_losses: expected `len(layer.losses)` after a training
            call.
        run_training: whether to run one `fit` step (and a jit one on TF).
        run_mixed_precision_check: whether to call the layer under
            `mixed_precision_policy()` too (see `check_mixed_precision`).
        input_data: optional input array; random normal otherwise.

    Returns:
        The first layer made, called in inference and training.
    """
    rng = np.random.default_rng(0)
    if input_data is None:
        input_data = rng.normal(size=input_shape).astype("float32")
    expected_output_shape = tuple(expected_output_shape or input_shape)

    def make_layer():
        return layer_cls(**{k: _fresh(v) for k, v in init_kwargs.items()})

    layer = make_layer()
    out = keras.ops.convert_to_numpy(layer(input_data, training=False))
    assert out.shape == expected_output_shape
    assert np.all(np.isfinite(out))
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert (
            len(layer.non_trainable_weights)
            == expected_num_non_trainable_weights
        )
    if expected_num_seed_generators is not None:
        assert count_seed_states(layer) == expected_num_seed_generators
    train_out = keras.ops.convert_to_numpy(layer(input_data, training=True))
    assert train_out.shape == expected_output_shape
    assert len(layer.losses) == expected_num_losses
    roundtrip_config(layer)

    inputs = keras.Input(shape=input_shape[1:], batch_size=None)
    model = keras.Model(inputs, make_layer()(inputs))
    before = model.predict(input_data, verbose=0)
    reloaded = save_and_reload(model, tmp_path)
    after = reloaded.predict(input_data, verbose=0)
    np.testing.assert_allclose(before, after, rtol=0, atol=1e-6)

    if run_training:
        targets = rng.normal(size=expected_output_shape).astype("float32")
        variants = [False]
        if keras.backend.backend() == "tensorflow":
            variants.append(True)
        for jit in variants:
            inputs = keras.Input(shape=input_shape[1:])
            model = keras.Model(inputs, make_layer()(inputs))
            model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
            history = model.fit(
                input_data, targets, batch_size=input_shape[0], epochs=1,
                verbose=0,
            )
            assert np.isfinite(history.history["loss"][0])

    if run_mixed_precision_check:
        check_mixed_precision(layer_cls, init_kwargs, input_data)
    return layer


def toy_data(n=64, classes=2, seed=0):
    """`n` 4-feature points labelled by the signs of their first features.

    Two classes: the sign of feature 0; three: how many of features 0 and 1
    are positive. A small model learns them in a few epochs.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    if classes == 3:
        y = y + (x[:, 1] > 0).astype("int32")
    return x, y


def toy_classifier(optimizer, classes=2, hidden=None, metrics=None, seed=0):
    """A compiled softmax classifier of `toy_data` (weights seeded)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer, "sparse_categorical_crossentropy",
                  metrics=metrics)
    return model
