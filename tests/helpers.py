"""Shared test helper for keras_regkit building blocks (not Keras's private harness).

`check_layer` runs the checks every public layer must pass: output shape,
weight counts, seed generators, losses, the config round trip, `.keras`
save/load with identical inference outputs, and one training step inside
`model.fit` (also with `jit_compile=True` on TensorFlow).
"""

import numpy as np

import keras

# The seed's `reg_config` of each capacity, exactly as its documents give it.
SEED_TABLE = {
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
    """Saves `model` to `.keras` and loads it back with the default safe_mode."""
    path = tmp_path / name
    model.save(path)
    return keras.saving.load_model(path)


def check_layer(
    make_layer,
    input_shape,
    tmp_path,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    expected_num_seed_generators=None,
    expected_num_losses=0,
    run_training=True,
    input_data=None,
):
    """Runs the standard building-block checks on a layer.

    Args:
        make_layer: zero-argument callable returning a fresh layer.
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
        input_data: optional input array; random normal otherwise.
    """
    rng = np.random.default_rng(0)
    if input_data is None:
        input_data = rng.normal(size=input_shape).astype("float32")
    expected_output_shape = tuple(expected_output_shape or input_shape)

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
    return layer
