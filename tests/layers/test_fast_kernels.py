"""Tests for FastConv2D, FusedBatchNormalization and GELU: Keras's, faster.

Each is checked against the Keras layer or function it stands for, on the
same weights and inputs: outputs, moving statistics and one SGD step (which
goes through the fused op's and the closed-form gradients on TensorFlow,
and through Keras's own code elsewhere). Tolerances are float32 rounding
relative to the magnitudes compared, or bfloat16's where the inputs are
bfloat16: 8 significant bits, so neighbouring values are 2**-7 apart
relative to their magnitude, and rounding moves a value by half that.
"""

import math

import keras
import numpy as np
import pytest

from keras_regkit.layers import GELU
from keras_regkit.layers import FastConv2D
from keras_regkit.layers import FusedBatchNormalization
from tests.helpers import check_layer

BF16_STEP = 2.0 ** -7
erf = np.vectorize(math.erf)


def _np(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


def _gelu64(x):
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def test_gelu_check_layer(tmp_path):
    check_layer(GELU, {}, (2, 5, 4), tmp_path,
                expected_num_trainable_weights=0,
                expected_num_non_trainable_weights=0,
                expected_num_seed_generators=0, run_training=False)


def test_fused_batch_norm_check_layer(tmp_path):
    check_layer(FusedBatchNormalization, dict(momentum=0.8), (4, 3, 3, 5),
                tmp_path, expected_num_trainable_weights=2,
                expected_num_non_trainable_weights=2,
                expected_num_seed_generators=0)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_equals_keras_gelu_in_float32(approximate, training):
    x = np.linspace(-8.0, 8.0, 401, dtype="float32")
    ours = _np(GELU(approximate=approximate)(x, training=training))
    keras_value = _np(keras.activations.gelu(
        keras.ops.convert_to_tensor(x), approximate=approximate))
    # Float32 rounding of values up to 8: a few ulps.
    np.testing.assert_allclose(ours, keras_value, rtol=1e-6, atol=1e-6)
    if not approximate:
        np.testing.assert_allclose(ours, _gelu64(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_gelu_computes_bfloat16_inputs_in_float32(training):
    x = np.linspace(-4.0, 4.0, 257, dtype="float32")
    x16 = keras.ops.cast(x, "bfloat16")
    y = GELU(dtype="mixed_bfloat16")(x16, training=training)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    # The exact GELU of the bfloat16 inputs, rounded once to bfloat16: at
    # most half a step of the output's magnitude away.
    exact = _gelu64(_np(x16))
    np.testing.assert_allclose(_np(y), exact, rtol=BF16_STEP / 2 + 1e-7,
                               atol=1e-30)


def test_gelu_gradient_is_phi_plus_x_pdf():
    # One SGD step on the loss `-sum(GELU(w * x))` moves `w` by
    # `lr * sum(x * GELU'(w * x))`, with GELU'(z) = Phi(z) + z * phi(z).
    x = np.linspace(-3.0, 3.0, 13, dtype="float32")[None]
    inputs = keras.Input((13,))
    weight = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    z = weight(keras.layers.Reshape((13, 1))(inputs))
    outputs = keras.layers.Flatten()(GELU()(z))
    model = keras.Model(inputs, keras.ops.sum(outputs, axis=1,
                                              keepdims=True))
    model.compile(keras.optimizers.SGD(0.1), loss=lambda y, p: -p)
    model.train_on_batch(x, np.zeros((1, 1), "float32"))
    z64 = x.astype(np.float64)[0]
    derivative = (0.5 * (1 + erf(z64 / np.sqrt(2)))
                  + z64 * np.exp(-z64 ** 2 / 2) / np.sqrt(2 * np.pi))
    np.testing.assert_allclose(_np(weight.kernel).item(),
                               1.0 + 0.1 * np.sum(z64 * derivative),
                               rtol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_gelu_leaves_float64_to_keras(training):
    # No detour through float32: Keras's own gelu, in its dtype.
    x = keras.ops.convert_to_tensor(np.array([-2.5, -1e-9, 0.3, 1.7]),
                                    "float64")
    y = GELU(dtype="float64")(x, training=training)
    expected = keras.activations.gelu(x, approximate=False)
    assert y.dtype == expected.dtype
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y),
                                  keras.ops.convert_to_numpy(expected))


def test_gelu_rejects_a_non_bool_approximate():
    with pytest.raises(ValueError, match="`approximate`.*Received: "
                       "approximate='tanh'"):
        GELU(approximate="tanh")


def _twin_models(layer_kwargs, shape, dtype="float32", seed=3):
    """Keras's BN and ours after the same conv, with the same weights."""
    def build(cls):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input(shape[1:])
        conv = keras.layers.Conv2D(4, 3, padding="same", dtype=dtype)
        norm = cls(**layer_kwargs, dtype=dtype)
        x = norm(conv(inputs))
        outputs = keras.layers.GlobalAveragePooling2D(dtype="float32")(x)
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(0.5), "mse")
        return model, norm

    return build(keras.layers.BatchNormalization), build(
        FusedBatchNormalization)


@pytest.mark.parametrize("kwargs", [
    dict(momentum=0.7),
    dict(momentum=0.9, center=False, scale=False, epsilon=1e-3),
])
def test_fused_batch_norm_trains_as_keras_batch_norm(kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(1.5, 2.0, size=(6, 5, 5, 3)).astype("float32")
    y = rng.normal(size=(6, 4)).astype("float32")
    (keras_model, keras_norm), (ours, our_norm) = _twin_models(kwargs, x.shape)
    for gamma in ("gamma",) if kwargs.get("scale", True) else ():
        values = np.linspace(0.5, 2.0, 4).astype("float32")
        getattr(keras_norm, gamma).assign(values)
        getattr(our_norm, gamma).assign(values)
    np.testing.assert_allclose(_np(ours(x, training=True)),
                               _np(keras_model(x, training=True)),
                               rtol=1e-5, atol=1e-5)
    for _ in range(2):
        keras_loss = keras_model.train_on_batch(x, y)
        our_loss = ours.train_on_batch(x, y)
        np.testing.assert_allclose(our_loss, keras_loss, rtol=1e-5)
    # Weights and moving statistics after two steps (of order 1: float32
    # rounding through a conv and a few reductions).
    for ours_w, keras_w in zip(ours.weights, keras_model.weights):
        np.testing.assert_allclose(_np(ours_w), _np(keras_w), rtol=1e-4,
                                   atol=1e-5, err_msg=ours_w.path)
    np.testing.assert_allclose(_np(ours(x, training=False)),
                               _np(keras_model(x, training=False)),
                               rtol=1e-5, atol=1e-5)


def test_fused_batch_norm_moving_variance_is_the_biased_one():
    # The fused op hands back n / (n - 1) times the batch variance; Keras's
    # moving average takes the biased one, and so must ours.
    x = np.arange(2 * 2 * 2 * 1, dtype="float32").reshape(2, 2, 2, 1)
    norm = FusedBatchNormalization(momentum=0.0)
    norm(x, training=True)
    np.testing.assert_allclose(_np(norm.moving_mean), [x.mean()], rtol=1e-6)
    np.testing.assert_allclose(_np(norm.moving_variance), [x.var()],
                               rtol=1e-6)


def test_fused_batch_norm_under_mixed_bfloat16():
    rng = np.random.default_rng(1)
    x = rng.normal(-1.0, 3.0, size=(8, 4, 4, 6)).astype("float32")
    x16 = keras.ops.cast(x, "bfloat16")
    ours = FusedBatchNormalization(momentum=0.0, dtype="mixed_bfloat16")
    theirs = keras.layers.BatchNormalization(momentum=0.0,
                                             dtype="mixed_bfloat16")
    y_ours, y_theirs = ours(x16, training=True), theirs(x16, training=True)
    assert keras.backend.standardize_dtype(y_ours.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(ours.moving_mean.dtype) == (
        "float32")
    # Both compute the statistics in float32 from the same bfloat16 inputs.
    np.testing.assert_allclose(_np(ours.moving_mean),
                               _np(theirs.moving_mean), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(_np(ours.moving_variance),
                               _np(theirs.moving_variance), rtol=1e-5)
    # Normalized outputs are of order 3 at most; each side rounds once to
    # bfloat16, so they differ by at most one step of their magnitude (of
    # 1 near zero, where the step of values below 1 is smaller still).
    np.testing.assert_allclose(_np(y_ours), _np(y_theirs), rtol=BF16_STEP,
                               atol=BF16_STEP)


@pytest.mark.parametrize("axis, shape", [(1, (4, 3, 5, 5)), (-1, (6, 3))])
def test_other_layouts_are_keras_batch_norm(axis, shape):
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    ours = FusedBatchNormalization(axis=axis, momentum=0.5)
    theirs = keras.layers.BatchNormalization(axis=axis, momentum=0.5)
    np.testing.assert_allclose(_np(ours(x, training=True)),
                               _np(theirs(x, training=True)), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(_np(ours.moving_variance),
                               _np(theirs.moving_variance), rtol=1e-6)


@pytest.mark.requires_tensorflow  # the XLA functions are TensorFlow's
def test_gelu_falls_back_to_plain_ops_where_xla_cannot_compile(monkeypatch):
    import tensorflow as tf

    from keras_regkit.layers import fast_kernels

    def no_xla(fn, jit_compile=None, **kwargs):
        def refuse(*args):
            raise tf.errors.UnimplementedError(None, None, "no XLA here")
        return refuse if jit_compile else tf.function(fn, **kwargs)

    fast_kernels._tf_gelu_functions.cache_clear()
    monkeypatch.setattr(tf, "function", no_xla)
    try:
        forward, backward = fast_kernels._tf_gelu_functions()
        x = np.linspace(-3.0, 3.0, 7, dtype="float32")
        np.testing.assert_allclose(_np(forward(tf.constant(x))), _gelu64(x),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(_np(GELU()(x, training=True)),
                                   _gelu64(x), rtol=1e-6, atol=1e-6)
    finally:
        monkeypatch.undo()
        fast_kernels._tf_gelu_functions.cache_clear()
    assert fast_kernels._tf_gelu_functions()[0]._jit_compile


@pytest.mark.requires_tensorflow  # XLA inside a TensorFlow graph
def test_only_training_graphs_call_xla():
    # An exported (inference) graph must run where TensorFlow has no XLA.
    import tensorflow as tf

    layer = GELU()
    x = tf.zeros((2, 3))

    def xla_calls(training):
        graph = tf.function(lambda t: layer(t, training=training)
                            ).get_concrete_function(x).graph
        return [op.type for op in graph.get_operations()
                if "_XlaMustCompile" in op.node_def.attr]

    assert xla_calls(False) == []
    assert xla_calls(True)


@pytest.mark.requires_tensorflow  # which TensorFlow op runs
def test_training_graph_runs_the_fused_op_and_inference_does_not():
    # The outputs match Keras's either way: this is what shows the fast
    # path is taken, and only where it should be.
    import tensorflow as tf

    norm = FusedBatchNormalization()
    x = tf.zeros((2, 3, 3, 4))

    def op_types(training):
        graph = tf.function(lambda t: norm(t, training=training)
                            ).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types(True)
    assert not {"FusedBatchNormV3", "FusedBatchNorm"} & op_types(False)
    channels_first = FusedBatchNormalization(axis=1)
    graph = tf.function(lambda t: channels_first(t, training=True)
                        ).get_concrete_function(x).graph
    assert "FusedBatchNormV3" not in {op.type for op in
                                      graph.get_operations()}


# FastConv2D: Keras's Conv2D, with the kernel gradient as matmuls where
# that is faster (TensorFlow, in training).


def test_fast_conv_check_layer(tmp_path):
    check_layer(FastConv2D, dict(filters=4, kernel_size=3, padding="same"),
                (2, 5, 5, 3), tmp_path, expected_output_shape=(2, 5, 5, 4),
                expected_num_trainable_weights=2,
                expected_num_non_trainable_weights=0,
                expected_num_seed_generators=0)


def test_fast_conv_rejects_an_unknown_kernel_gradient():
    with pytest.raises(ValueError, match="`kernel_gradient`.*'auto'.*"
                       "Received: kernel_gradient='matmul'"):
        FastConv2D(4, 3, kernel_gradient="matmul")


def test_fast_conv_config_round_trip():
    layer = FastConv2D(4, 3, padding="same", kernel_gradient="native")
    again = FastConv2D.from_config(layer.get_config())
    assert again.kernel_gradient == "native"
    assert again.get_config() == layer.get_config()


def _conv_twins(kwargs, input_shape, dtype="float32",
                kernel_gradient="shifted_matmuls", seed=5):
    """Keras's Conv2D and FastConv2D, built with the same weights."""
    keras_conv = keras.layers.Conv2D(**kwargs, dtype=dtype)
    fast_conv = FastConv2D(**kwargs, dtype=dtype,
                           kernel_gradient=kernel_gradient)
    keras_conv.build(input_shape)
    fast_conv.build(input_shape)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=w.shape).astype("float32")
               for w in keras_conv.weights]
    keras_conv.set_weights(weights)
    fast_conv.set_weights(weights)
    return keras_conv, fast_conv


def _gradients(layer, x, upstream):
    """The layer's output, and the gradients of `sum(output * upstream)`
    for its input and each weight (TensorFlow's tape)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return [_np(t) for t in [y] + grads]


CONV_CASES = [
    dict(filters=5, kernel_size=3, padding="same"),
    dict(filters=5, kernel_size=3, padding="valid"),
    dict(filters=2, kernel_size=2, padding="same"),  # uneven padding
    dict(filters=3, kernel_size=(3, 2), padding="same", use_bias=False),
    dict(filters=4, kernel_size=1, padding="valid"),
]


@pytest.mark.requires_tensorflow  # the matmul gradient is TensorFlow's
@pytest.mark.parametrize("kwargs", CONV_CASES,
                         ids=lambda k: f"{k['kernel_size']}-{k['padding']}")
def test_shifted_matmul_gradients_equal_tensorflows(kwargs):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 7, 4)).astype("float32")
    keras_conv, fast_conv = _conv_twins(kwargs, x.shape)
    upstream = rng.normal(size=keras_conv.compute_output_shape(x.shape)
                          ).astype("float32")
    expected = _gradients(keras_conv, x, upstream)
    ours = _gradients(fast_conv, x, upstream)
    assert len(ours) == len(expected) == (4 if fast_conv.use_bias else 3)
    for name, a, b in zip(["output", "input", "kernel", "bias"], ours,
                          expected):
        assert a.shape == b.shape, name
        # Sums of at most 3 * 6 * 7 float32 products of order-1 terms,
        # added in another order: well within 1e-5 of the largest value.
        np.testing.assert_allclose(a, b, rtol=0,
                                   atol=1e-5 * np.abs(b).max(), err_msg=name)


def _bf16(a):
    """`a` rounded to bfloat16, as float64."""
    return _np(keras.ops.cast(a, "bfloat16")).astype("float64")


@pytest.mark.requires_tensorflow
def test_matmul_gradient_under_mixed_bfloat16_is_the_exact_one_rounded():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 7, 7, 16)).astype("float32")
    kwargs = dict(filters=8, kernel_size=3, padding="same")
    keras_conv, fast_conv = _conv_twins(kwargs, x.shape,
                                        dtype="mixed_bfloat16")
    upstream = rng.normal(size=(8, 7, 7, 8)).astype("float32")
    expected = _gradients(keras_conv, x, upstream)
    ours = _gradients(fast_conv, x, upstream)
    # Output, input and bias gradients come from the same TensorFlow ops
    # on both sides: within one rounding step of the largest value.
    for name, a, b in zip(["output", "input", "bias"],
                          [ours[0], ours[1], ours[3]],
                          [expected[0], expected[1], expected[3]]):
        np.testing.assert_allclose(a, b, rtol=0,
                                   atol=BF16_STEP * np.abs(b).max(),
                                   err_msg=name)
    # The kernel gradient against its definition in float64, on the
    # bfloat16 values the layer computes with: sums over the 392
    # positions of the padded input windows times the upstream gradient.
    xs = np.pad(_bf16(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    up = _bf16(upstream)
    exact = np.stack([np.stack([
        np.einsum("nhwc,nhwo->co", xs[:, i:i + 7, j:j + 7], up)
        for j in range(3)]) for i in range(3)])
    # Summed in float32 and rounded once to bfloat16 (oneDNN), a value is
    # within half a step of its magnitude; Eigen's bfloat16 matmul (an
    # AVX2-only CPU's) also rounds partial sums, within a step here. Two
    # steps of the largest value bound both. (TensorFlow's own bfloat16
    # kernel-gradient op on Eigen sums in bfloat16 and misses this bound
    # several times over.)
    np.testing.assert_allclose(ours[2], exact, rtol=0,
                               atol=2 * BF16_STEP * np.abs(exact).max())


def _kernel_gradient_ops(layer, input_shape, dtype, training=True):
    """TensorFlow op types in the graph of the layer's input and kernel
    gradients."""
    import tensorflow as tf

    x = tf.zeros(input_shape, dtype)

    def grads(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = layer(t, training=training)
        return tape.gradient(y, [t, layer.kernel])

    graph = tf.function(grads).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.requires_tensorflow  # which TensorFlow op runs
def test_auto_takes_matmuls_only_for_small_bfloat16_maps(monkeypatch):
    def ops_for(size, dtype="mixed_bfloat16", training=True, **kwargs):
        layer = FastConv2D(8, 3, padding="same", dtype=dtype, **kwargs)
        return _kernel_gradient_ops(layer, (2, size, size, 4),
                                    "float32", training)

    from keras_regkit.layers import fast_kernels

    # The rule for a CPU, whatever this machine has.
    monkeypatch.setattr(fast_kernels, "_tf_sees_an_accelerator",
                        lambda: False)
    limit = fast_kernels.SHIFTED_GRADIENT_MAX_POSITIONS
    largest = int(np.sqrt(limit))  # 8x8 = 64 positions: the matmuls
    small = ops_for(largest)
    assert "Conv2DBackpropFilter" not in small
    assert "MatMul" in small or "BatchMatMulV2" in small
    # A 9x9 map (81 positions), float32, or inference: TensorFlow's op.
    assert "Conv2DBackpropFilter" in ops_for(largest + 1)
    assert "Conv2DBackpropFilter" in ops_for(largest, dtype="float32")
    assert "Conv2DBackpropFilter" in ops_for(largest, training=False)
    assert "Conv2DBackpropFilter" in ops_for(
        largest, kernel_gradient="native")
    # Strided convolutions keep TensorFlow's op even when asked.
    strided = FastConv2D(8, 3, strides=2, padding="same",
                         kernel_gradient="shifted_matmuls")
    assert "Conv2DBackpropFilter" in _kernel_gradient_ops(
        strided, (2, 16, 16, 4), "float32")
    # With a GPU or TPU in sight, "auto" leaves the gradient to its kernels.
    monkeypatch.setattr(fast_kernels, "_tf_sees_an_accelerator",
                        lambda: True)
    assert "Conv2DBackpropFilter" in ops_for(largest)
    # And float32 at any size takes the matmuls only when asked.
    forced = FastConv2D(8, 3, padding="same",
                        kernel_gradient="shifted_matmuls")
    assert "Conv2DBackpropFilter" not in _kernel_gradient_ops(
        forced, (2, 16, 16, 4), "float32")


def test_fast_conv_trains_as_keras_conv():
    # On every backend: one SGD step moves the weights alike (JAX and
    # PyTorch differentiate Keras's convolution their own way).
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 7, 7, 3)).astype("float32")
    y = rng.normal(size=(6, 4)).astype("float32")
    kwargs = dict(filters=4, kernel_size=3, padding="same")
    after = []
    for conv in _conv_twins(kwargs, (None, 7, 7, 3)):
        inputs = keras.Input((7, 7, 3))
        outputs = keras.layers.GlobalAveragePooling2D()(conv(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(0.5), "mse")
        model.train_on_batch(x, y)
        after.append([_np(w) for w in conv.weights])
    for a, b in zip(*after):
        np.testing.assert_allclose(a, b, rtol=0,
                                   atol=1e-5 * np.abs(b).max())
