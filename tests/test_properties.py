"""Property-based tests (hypothesis) of the loss and the stochastic layers.

For any finite input: outputs are finite and shaped right; smoothed labels
are distributions; the cross-entropy is non-negative and the same for
integer and one-hot labels; every stochastic layer is exactly the identity
(or the wrapped layer) at inference, and in training it drops units only in
its own pattern, with the dropped fraction in range. Backend-agnostic
(`keras.ops` only). Examples are derandomized, so a run is reproducible.
"""

import keras
import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops

import keras_regkit as kr
from keras_regkit.losses import label_smoothing_cross_entropy

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)
rates = st.floats(0.05, 0.9)
epsilons = st.floats(0.0, 0.99)
seeds = st.integers(0, 2**16)


def finite(shape, low=-100.0, high=100.0):
    return hnp.arrays(np.float32, shape,
                      elements=st.floats(low, high, width=32))


# A few shapes only: JAX compiles every new shape, which costs more time
# than the examples themselves.
MAP_SHAPES = [(1, 4, 4, 1), (3, 7, 6, 2)]


@st.composite
def classification(draw):
    """`(logits, integer labels, number of classes)`."""
    batch = draw(st.sampled_from([1, 5]))
    classes = draw(st.sampled_from([2, 10]))
    logits = draw(finite((batch, classes), -50.0, 50.0))
    labels = draw(hnp.arrays(np.int32, batch,
                             elements=st.integers(0, classes - 1)))
    return logits, labels, classes


@st.composite
def feature_maps(draw, positive=False):
    shape = draw(st.sampled_from(MAP_SHAPES))
    return draw(finite(shape, 0.5, 2.0) if positive else finite(shape))


def numpy(x):
    return ops.convert_to_numpy(x)


@SETTINGS
@given(st.data(), epsilons)
def test_smoothed_soft_labels_are_distributions(data, epsilon):
    batch = data.draw(st.sampled_from([1, 5]))
    classes = data.draw(st.sampled_from([2, 10]))
    weights = data.draw(finite((batch, classes), 0.0, 10.0))
    soft = (weights + 1e-3) / (weights + 1e-3).sum(-1, keepdims=True)
    out = numpy(kr.smooth_labels(soft, epsilon))
    assert out.shape == soft.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert out.min() >= epsilon / classes - 1e-6
    np.testing.assert_allclose(out, (1 - epsilon) * soft + epsilon / classes,
                               atol=1e-6)


@SETTINGS
@given(classification(), epsilons)
def test_integer_labels_smooth_like_their_one_hot(problem, epsilon):
    _, labels, classes = problem
    from_int = numpy(kr.smooth_labels(labels, epsilon, num_classes=classes))
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    np.testing.assert_allclose(from_int, numpy(kr.smooth_labels(one_hot,
                                                                epsilon)),
                               atol=1e-7)
    np.testing.assert_allclose(from_int.sum(-1), 1.0, atol=1e-5)


@SETTINGS
@given(classification(), epsilons)
def test_cross_entropy_is_finite_non_negative_and_label_form_free(problem,
                                                                  epsilon):
    logits, labels, classes = problem
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    dense = numpy(label_smoothing_cross_entropy(one_hot, logits, epsilon,
                                                from_logits=True))
    sparse = numpy(label_smoothing_cross_entropy(labels, logits, epsilon,
                                                 from_logits=True))
    assert dense.shape == sparse.shape == (len(labels),)
    assert np.isfinite(dense).all() and (dense >= -1e-5).all()
    np.testing.assert_allclose(sparse, dense, rtol=1e-4, atol=1e-4)
    # Saturated probabilities (exact zeros) stay finite thanks to clipping.
    probs = np.eye(classes, dtype=np.float32)[(labels + 1) % classes]
    loss = kr.LabelSmoothingCrossEntropy(epsilon)(one_hot, probs)
    assert np.isfinite(numpy(loss)) and numpy(loss).shape == ()


STOCHASTIC = {
    "mc_dropout": lambda rate, seed: kr.MCDropout(rate, seed=seed, mc=False),
    "mc_spatial_dropout": lambda rate, seed: kr.MCSpatialDropout2D(
        rate, seed=seed, mc=False),
    "drop_block": lambda rate, seed: kr.DropBlock2D(rate, 3, seed=seed),
    "stochastic_depth": lambda rate, seed: kr.StochasticDepth(rate,
                                                              seed=seed),
}
WRAPPERS = {
    "drop_connect": lambda rate, seed: kr.DropConnect(
        keras.layers.Dense(5), rate, seed=seed),
    "weight_noise": lambda rate, seed: kr.GaussianWeightNoise(
        keras.layers.Dense(5), rate, seed=seed),
    "concrete_dropout": lambda rate, seed: kr.ConcreteDropout(
        keras.layers.Dense(5), init_min=rate, init_max=rate, seed=seed),
}


@SETTINGS
@given(st.sampled_from(sorted(STOCHASTIC)), feature_maps(), rates, seeds)
def test_stochastic_layers_are_the_identity_at_inference(name, x, rate,
                                                         seed):
    layer = STOCHASTIC[name](rate, seed)
    np.testing.assert_array_equal(numpy(layer(x, training=False)), x)
    out = numpy(layer(x, training=True))
    assert out.shape == x.shape and np.isfinite(out).all()


@SETTINGS
@given(st.sampled_from(sorted(WRAPPERS)), feature_maps(), rates, seeds)
def test_wrappers_are_the_wrapped_layer_at_inference(name, x, rate, seed):
    wrapper = WRAPPERS[name](rate, seed)
    flat = x.reshape(len(x), -1)
    inference = numpy(wrapper(flat, training=False))
    np.testing.assert_array_equal(inference, numpy(wrapper.layer(flat)))
    out = numpy(wrapper(flat, training=True))
    assert out.shape == (len(x), 5) and np.isfinite(out).all()


def _kept_scale(ratio):
    """The single non-zero value of `ratio` (all kept units share it)."""
    kept = ratio[ratio != 0]
    if kept.size:
        np.testing.assert_allclose(kept, kept.flat[0], rtol=1e-5)
        return float(kept.flat[0])
    return None


@SETTINGS
@given(feature_maps(positive=True), rates, seeds)
def test_dropout_drops_units_and_scales_the_rest(x, rate, seed):
    ratio = numpy(kr.MCDropout(rate, seed=seed)(x, training=True)) / x
    scale = _kept_scale(ratio)
    assert scale is None or abs(scale - 1 / (1 - rate)) < 1e-4 * scale
    # 6 standard deviations of the dropped fraction of x.size units.
    spread = 6 * np.sqrt(rate * (1 - rate) / x.size) + 1 / x.size
    assert abs((ratio == 0).mean() - rate) <= spread


@SETTINGS
@given(feature_maps(positive=True), rates, seeds)
def test_spatial_dropout_drops_whole_feature_maps(x, rate, seed):
    layer = kr.MCSpatialDropout2D(rate, seed=seed)
    ratio = numpy(layer(x, training=True)) / x
    dropped = ratio == 0
    assert (dropped == dropped[:, :1, :1, :]).all()
    scale = _kept_scale(ratio)
    assert scale is None or abs(scale - 1 / (1 - rate)) < 1e-4 * scale


@SETTINGS
@given(feature_maps(positive=True), rates, seeds)
def test_drop_block_scales_kept_units_by_the_dropped_fraction(x, rate, seed):
    ratio = numpy(kr.DropBlock2D(rate, 3, seed=seed)(x, training=True)) / x
    fraction = (ratio == 0).mean()
    assert 0.0 <= fraction <= 1.0  # a small map can lose every unit
    scale = _kept_scale(ratio)
    if fraction < 1.0:
        np.testing.assert_allclose(scale, 1 / (1 - fraction), rtol=1e-4)


@SETTINGS
@given(feature_maps(positive=True), rates, seeds)
def test_drop_path_drops_whole_samples(x, rate, seed):
    ratio = numpy(kr.StochasticDepth(rate, seed=seed)(x, training=True)) / x
    dropped = (ratio == 0).reshape(len(x), -1)
    assert (dropped == dropped[:, :1]).all()
    scale = _kept_scale(ratio)
    assert scale is None or abs(scale - 1 / (1 - rate)) < 1e-4 * scale
