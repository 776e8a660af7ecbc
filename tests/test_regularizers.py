"""Tests for keras_regkit.regularizers: ElasticNet, L2SP, GroupLasso."""

import numpy as np
import pytest

import keras
from keras import ops

from keras_regkit import regularizers
from keras_regkit.regularizers import L2SP
from keras_regkit.regularizers import ElasticNet
from keras_regkit.regularizers import GroupLasso
from keras_regkit.regularizers import apply_l2sp
from keras_regkit.regularizers import group_lasso
from tests.helpers import random_batch
from tests.helpers import save_and_reload


def _weight(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _value(regularizer, w):
    return float(ops.convert_to_numpy(regularizer(ops.convert_to_tensor(w))))


def _gradient(fn, w):
    """d fn(w) / d w on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(w)
        with tf.GradientTape() as tape:
            out = fn(v)
        return tape.gradient(out, v).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(ops.convert_to_tensor(w)))
    import torch

    t = torch.tensor(w, requires_grad=True)
    fn(t).backward()
    return t.grad.numpy()


# ElasticNet


@pytest.mark.parametrize("l1, l2", [(0.01, 0.01), (0.3, 0.0), (0.0, 2e-3),
                                    (0.0, 0.0)])
def test_elastic_net_value(l1, l2):
    w = _weight((16, 8))
    expected = l1 * np.abs(w).sum() + l2 * np.square(w).sum()
    np.testing.assert_allclose(_value(ElasticNet(l1, l2), w), expected,
                               rtol=1e-6)


def test_elastic_net_is_keras_l1l2():
    reg = ElasticNet()
    assert isinstance(reg, keras.regularizers.L1L2)
    assert reg.get_config() == {"l1": 0.01, "l2": 0.01}


def test_elastic_net_negative_l1():
    with pytest.raises(ValueError, match="argument `l1`"):
        ElasticNet(l1=-0.1)


def test_elastic_net_negative_l2():
    with pytest.raises(ValueError, match="argument `l2`"):
        ElasticNet(l2=-1e-4)


def test_elastic_net_non_finite():
    with pytest.raises(ValueError, match="argument `l1`"):
        ElasticNet(l1=float("inf"))


# L2SP


def test_l2sp_value():
    w, anchor = _weight((3, 3, 4, 6)), _weight((3, 3, 4, 6), seed=1)
    expected = 0.05 * np.square(w - anchor).sum()
    np.testing.assert_allclose(_value(L2SP(0.05, anchor), w), expected,
                               rtol=1e-6)


def test_l2sp_with_zero_anchor_is_keras_l2():
    w = _weight((10, 4))
    np.testing.assert_allclose(
        _value(L2SP(0.02, np.zeros_like(w)), w),
        _value(keras.regularizers.L2(0.02), w), rtol=1e-6,
    )


def test_l2sp_config_holds_the_anchor_shape_not_its_values():
    anchor = _weight((4, 3))
    config = L2SP(0.1, anchor=anchor).get_config()
    assert config == {"alpha": 0.1, "anchor_shape": [4, 3]}
    # A config written before 0.1.0 carries the values; it still builds.
    old = L2SP.from_config({"alpha": 0.1, "anchor": anchor.tolist()})
    np.testing.assert_array_equal(old.anchor, anchor)


def test_l2sp_anchor_is_saved_in_the_weights_file(tmp_path):
    import os
    import zipfile

    def model():
        inputs = keras.Input((300,))
        return keras.Model(inputs, keras.layers.Dense(1000)(inputs))

    plain, anchored = model(), model()
    apply_l2sp(anchored, alpha=0.1)
    start = ops.convert_to_numpy(anchored.layers[1].kernel)
    anchored.layers[1].kernel.assign(start + 0.5)  # fine-tuned away from it
    plain.save(tmp_path / "plain.keras")
    anchored.save(tmp_path / "anchored.keras")
    config = zipfile.ZipFile(tmp_path / "anchored.keras").read("config.json")
    assert len(config) < 10_000  # not 300,000 numbers as text
    # The anchor is one more float32 copy of the kernel, in binary: twice
    # the weights (the kernel is 99.7% of them) and nothing more.
    ratio = (os.path.getsize(tmp_path / "anchored.keras")
             / os.path.getsize(tmp_path / "plain.keras"))
    assert 1.9 < ratio < 2.05
    loaded = keras.saving.load_model(tmp_path / "anchored.keras")
    regularizer = loaded.layers[1].kernel_regularizer
    np.testing.assert_array_equal(regularizer.anchor, start)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.losses[0]),
                               0.1 * 0.25 * start.size, rtol=1e-5)


def test_l2sp_anchor_shape_is_validated():
    with pytest.raises(ValueError, match="argument `anchor_shape`"):
        L2SP(0.1, anchor_shape=(4, 0))


def test_l2sp_requires_anchor():
    with pytest.raises(ValueError, match="argument `anchor`"):
        L2SP(0.01)


def test_l2sp_non_finite_anchor():
    with pytest.raises(ValueError, match="argument `anchor`"):
        L2SP(0.01, anchor=[[1.0, float("nan")]])


def test_l2sp_negative_alpha():
    with pytest.raises(ValueError, match="argument `alpha`"):
        L2SP(-0.01, anchor=[[1.0]])


def test_l2sp_anchor_shape_mismatch():
    with pytest.raises(ValueError, match=r"anchor.shape=\(2, 2\)"):
        L2SP(0.01, anchor=np.ones((2, 2)))(ops.ones((2, 3)))


def _mlp(regularizer=None, constraint=None):
    inputs = keras.Input((48,))
    x = keras.layers.Dense(16, activation="relu", name="hidden",
                           kernel_regularizer=regularizer,
                           kernel_constraint=constraint)(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))


def _features(cifar10_small, n=300):
    """Real CIFAR-10 images pooled to 4x4x3 = 48 standardized features."""
    x, y = cifar10_small
    x = x[:n].astype("float32").reshape(n, 4, 8, 4, 8, 3).mean((2, 4))
    x = x.reshape(n, -1)
    return (x - x.mean(0)) / x.std(0), y[:n]


def _fit(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, batch_size=100, epochs=3, verbose=0, shuffle=False)
    return ops.convert_to_numpy(model.get_layer("hidden").kernel)


@pytest.mark.slow
def test_apply_l2sp_anchors_current_kernels(cifar10_small):
    x, y = _features(cifar10_small)
    model, free = _mlp(), _mlp()
    free.set_weights(model.get_weights())
    chosen = apply_l2sp(model, alpha=0.5)
    assert [layer.name for layer in chosen] == ["hidden", "head"]
    np.testing.assert_allclose(
        [ops.convert_to_numpy(v) for v in model.losses], 0.0)
    hidden = model.get_layer("hidden")
    start = ops.convert_to_numpy(hidden.kernel)
    hidden.kernel.assign(start + 0.1)
    np.testing.assert_allclose(ops.convert_to_numpy(model.losses[0]),
                               0.5 * 0.01 * start.size, rtol=1e-5)
    hidden.kernel.assign(start)
    # Fine-tuning under L2-SP stays closer to the anchor than without it.
    moved = np.linalg.norm(_fit(model, x, y) - start)
    moved_free = np.linalg.norm(_fit(free, x, y) - start)
    assert moved < 0.8 * moved_free


def test_apply_l2sp_selected_layers():
    model = _mlp()
    chosen = apply_l2sp(model, alpha=0.1, layers=["head"])
    assert chosen == [model.get_layer("head")]
    assert model.get_layer("hidden").kernel_regularizer is None


def test_apply_l2sp_unknown_layer():
    with pytest.raises(ValueError, match="argument `layers`"):
        apply_l2sp(_mlp(), layers=["nope"])


def test_apply_l2sp_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="built model"):
        apply_l2sp(model)


# GroupLasso


@pytest.mark.parametrize(
    "shape, axis",
    [((12, 5), -1), ((12, 5), 0), ((3, 3, 4, 6), -1), ((3, 3, 4, 6), 2),
     ((7,), 0)],
)
def test_group_lasso_value(shape, axis):
    w = _weight(shape)
    moved = np.moveaxis(w, axis, 0).reshape(shape[axis], -1)
    expected = 0.03 * np.sqrt(moved.shape[1]) * np.linalg.norm(
        moved, axis=1).sum()
    np.testing.assert_allclose(_value(GroupLasso(0.03, axis), w), expected,
                               rtol=1e-6)


def test_group_lasso_gradient_is_finite_at_zero_group():
    w = _weight((6, 4))
    w[:, 1] = 0.0
    grad = _gradient(lambda v: group_lasso(v, 0.1), w)
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[:, 1], 0.0)
    expected = 0.1 * np.sqrt(6) * w / np.linalg.norm(w, axis=0).clip(1e-30)
    np.testing.assert_allclose(grad[:, [0, 2, 3]], expected[:, [0, 2, 3]],
                               rtol=1e-5)


def _train_group_lasso(x, y, strength):
    keras.utils.set_random_seed(0)
    reg = GroupLasso(strength) if strength else None
    inputs = keras.Input((x.shape[1],))
    hidden = keras.layers.Dense(
        32, activation="relu", kernel_regularizer=reg,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
    )
    outputs = keras.layers.Dense(10, activation="softmax")(hidden(inputs))
    model = keras.Model(inputs, outputs)
    schedule = keras.optimizers.schedules.CosineDecay(0.5, 30)
    model.compile(optimizer=keras.optimizers.SGD(schedule),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=len(x), epochs=30, verbose=0)
    return np.linalg.norm(ops.convert_to_numpy(hidden.kernel), axis=0)


@pytest.mark.slow
def test_group_lasso_switches_whole_units_off(cifar10_small):
    x, y = cifar10_small
    n = 300
    x = x[:n].astype("float32").reshape(n, 8, 4, 8, 4, 3).mean((2, 4))
    x = x.reshape(n, -1)
    x, y = (x - x.mean(0)) / x.std(0), y[:n]
    sparse = _train_group_lasso(x, y, 0.01)
    dense = _train_group_lasso(x, y, 0.0)
    # Strong group lasso: several units end (near) exactly at zero while
    # others stay large; without it every unit keeps a comparable norm.
    assert np.sum(sparse < 1e-3) >= 3
    assert sparse.max() > 0.05
    assert dense.min() > 0.3 * dense.max()


def test_group_lasso_negative_l():
    with pytest.raises(ValueError, match="argument `l`"):
        GroupLasso(l=-1.0)


@pytest.mark.parametrize("axis", [1.5, "units", None])
def test_group_lasso_bad_axis_type(axis):
    with pytest.raises(ValueError, match="argument `axis`"):
        GroupLasso(axis=axis)


def test_group_lasso_axis_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        GroupLasso(axis=3)(ops.ones((4, 2)))


# Family


def test_get_by_name_and_config():
    assert isinstance(regularizers.get("ElasticNet"), ElasticNet)
    assert isinstance(regularizers.get("group_lasso"), GroupLasso)
    reg = GroupLasso(0.2, axis=0)
    assert regularizers.get(reg) is reg
    restored = regularizers.get(keras.saving.serialize_keras_object(reg))
    assert restored.get_config() == reg.get_config()
    with pytest.raises(ValueError, match="elastic_net"):
        regularizers.get("lasso")


def test_models_save_reload_and_train(tmp_path):
    x, y = random_batch(64, (48,))
    variants = [False, True] if keras.backend.backend() == "tensorflow" else [
        False]
    for i, reg in enumerate([ElasticNet(1e-3, 1e-3), GroupLasso(1e-2),
                             L2SP(1e-2, _weight((48, 16)))]):
        model = _mlp(reg)
        before = model.predict(x, verbose=0)
        reloaded = save_and_reload(model, tmp_path, f"m{i}.keras")
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), before,
                                   rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            ops.convert_to_numpy(reloaded.losses[0]),
            ops.convert_to_numpy(model.losses[0]), rtol=1e-6)
        assert type(reloaded.get_layer("hidden").kernel_regularizer) is type(
            reg)
        for jit in variants:
            model = _mlp(reg)
            model.compile(optimizer="sgd", jit_compile=jit,
                          loss=keras.losses.SparseCategoricalCrossentropy(
                              True))
            history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
            assert np.all(np.isfinite(history.history["loss"]))
