"""Tests for keras_regkit.data.DeviceArrayLoader (JAX; one test elsewhere).

Synthetic images: random uint8 pixels, so every crop and mirror of an
image is told apart from every other, and integer labels that are the
image's index, so each batch says which images it holds.
"""

import numpy as np
import pytest

import keras

from keras_regkit.data import ArrayLoader
from keras_regkit.data import alternating_flip_mask
from keras_regkit.data.device_loader import DeviceArrayLoader
from keras_regkit.models.fast_net import adapt_fast_net
from keras_regkit.models.fast_net import build_fast_net
from keras_regkit.models.presets import get_preset
from keras_regkit.training.recipe import compile_for_preset
from keras_regkit.training.recipe import trick_callbacks
from tests.helpers import match_shift

ON_JAX = keras.backend.backend() == "jax"
jax_only = pytest.mark.skipif(
    not ON_JAX, reason="DeviceArrayLoader keeps its data on a JAX device")


def _images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (n, size, size, 3)).astype(np.uint8)


def _epoch(loader):
    images, ids = zip(*(loader[i] for i in range(len(loader))))
    images = np.concatenate([np.asarray(b, np.float32) for b in images])
    return np.round(images * 255).astype(np.uint8), np.concatenate(ids)


@pytest.mark.skipif(ON_JAX, reason="checks the error on other backends")
def test_other_backends_get_an_error_that_names_the_way_out():
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=jax.*ArrayLoader"):
        DeviceArrayLoader(_images(8), np.arange(8), 4, training=True)


@jax_only
@pytest.mark.parametrize("dtype,atol", [("float32", 1e-7),
                                        ("bfloat16", 2.0**-8)])
def test_evaluation_keeps_order_scales_and_one_hot(dtype, atol):
    # bfloat16 keeps 8 significant bits: values in [0, 1] are off by at
    # most half a unit in the last place, 2**-9, below `atol`.
    x, y = _images(50), np.arange(50) % 10
    loader = DeviceArrayLoader(x, y, 16, training=False, num_classes=10,
                               dtype=dtype)
    batches = [loader[i] for i in range(len(loader))]
    assert [len(b[0]) for b in batches] == [16, 16, 16, 2]
    assert str(batches[0][0].dtype) == dtype
    images = np.concatenate([np.asarray(b[0], np.float32) for b in batches])
    labels = np.concatenate([np.asarray(b[1]) for b in batches])
    np.testing.assert_allclose(images, x / 255.0, atol=atol)
    np.testing.assert_array_equal(labels, np.eye(10)[y])


@jax_only
def test_each_epoch_is_a_new_seeded_order_without_the_partial_batch():
    x = _images(100)
    loader = DeviceArrayLoader(x, np.arange(100), 16, training=True, seed=5)
    assert len(loader) == 6
    _, first = _epoch(loader)
    assert len(first) == 96 and len(set(first.tolist())) == 96
    assert np.all(np.diff(first) > 0) is np.False_  # shuffled
    loader.on_epoch_end()
    _, second = _epoch(loader)
    assert not np.array_equal(first, second)
    again = DeviceArrayLoader(x, np.arange(100), 16, training=True, seed=5)
    np.testing.assert_array_equal(_epoch(again)[1], first)


@jax_only
def test_alternating_flips_and_translations_follow_their_definition():
    n = 320
    x = _images(n)
    loader = DeviceArrayLoader(x, np.arange(n), 32, training=True, seed=3,
                               augmentation="alternating_flip_translate2")
    for epoch in range(2):
        images, ids = _epoch(loader)
        matches, offsets = match_shift(images, x[ids])
        # Mirrored exactly when the base mask says so, XOR the epoch's
        # parity; never both ways (random pixels make that impossible).
        expected = alternating_flip_mask(n, epoch, seed=3)[ids]
        np.testing.assert_array_equal(matches[1], expected)
        np.testing.assert_array_equal(matches[0], ~expected)
        # 320 draws over 25 offsets: each is missed with probability
        # (24/25)**320 < 2e-6.
        assert offsets == {(a, b) for a in range(5) for b in range(5)}
        loader.on_epoch_end()


@jax_only
def test_random_flips_mirror_about_half_the_images():
    n = 800
    x = _images(n)
    loader = DeviceArrayLoader(x, np.arange(n), 100, training=True, seed=1,
                               augmentation="flip")
    images, ids = _epoch(loader)
    mirrored = np.all(images == x[ids][:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(images == x[ids], axis=(1, 2, 3))
    assert np.all(mirrored ^ unchanged)
    # Binomial(800, 0.5): standard error 0.0177; 4 of them is 0.071.
    assert abs(mirrored.mean() - 0.5) < 0.071


@jax_only
@pytest.mark.parametrize("kwargs,name", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 64}, "batch_size"),  # more than the 50 images
    ({"augmentation": "rotate"}, "augmentation"),
    ({"dtype": "int8"}, "dtype"),
    ({"training": "yes"}, "training"),
    ({"seed": -1}, "seed"),
    ({"mean": [0.1, 0.2]}, "mean"),
])
def test_bad_arguments_are_named(kwargs, name):
    args = dict(x=_images(50), y=np.arange(50), batch_size=16,
                training=True)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        DeviceArrayLoader(**args)


class _NoTransferAfterWarmUp(keras.callbacks.Callback):
    """Forbids every host-device copy inside the training executions
    after the first (the warm-up, which compiles)."""

    def __init__(self):
        super().__init__()
        self.guarded = 0
        self._guard = None

    def on_train_batch_begin(self, batch, logs=None):
        import jax

        if self._seen_one:
            self._guard = jax.transfer_guard("disallow")
            self._guard.__enter__()
            self.guarded += 1
        self._seen_one = True

    def on_train_batch_end(self, batch, logs=None):
        if self._guard is not None:
            self._guard.__exit__(None, None, None)
            self._guard = None

    def on_train_begin(self, logs=None):
        self._seen_one = False


def _fit_fast_net(loader_cls, **loader_kwargs):
    preset = get_preset("fast", conv_filters=(8, 16, 16), batch_size=32,
                        epochs=3)
    x = _images(96, size=32, seed=2)
    y = np.arange(96) % 10
    keras.utils.set_random_seed(0)
    model = build_fast_net((32, 32, 3), 10, preset)
    adapt_fast_net(model, x)
    loader = loader_cls(x, y, 32, training=True, num_classes=10, seed=0,
                        augmentation=preset.augmentation, **loader_kwargs)
    compile_for_preset(model, preset, 10, steps_per_epoch=len(loader),
                       steps_per_execution=len(loader),
                       lookahead="optimizer")
    guard = _NoTransferAfterWarmUp()
    before = [np.array(w) for w in model.get_weights()]
    try:
        model.fit(loader, epochs=3, verbose=0,
                  callbacks=trick_callbacks(preset, "optimizer") + [guard])
    finally:
        if guard._guard is not None:  # an error left the guard entered
            guard._guard.__exit__(None, None, None)
    return model, before, guard


@jax_only
def test_training_steps_after_the_first_copy_nothing_from_the_host():
    model, before, guard = _fit_fast_net(DeviceArrayLoader)
    assert guard.guarded == 2  # epochs 2 and 3, one execution each
    after = model.get_weights()
    changed = [not np.allclose(a, b) for a, b in zip(before, after)]
    assert sum(changed) >= len(changed) // 2


@jax_only
def test_the_transfer_check_catches_host_batches():
    # The same check fails on ArrayLoader, whose NumPy batches are copied
    # to the device every step: so the test above can fail.
    with pytest.raises(Exception, match="Disallowed host-to-device"):
        _fit_fast_net(ArrayLoader)
