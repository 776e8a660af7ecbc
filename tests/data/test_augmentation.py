"""Tests for keras_regkit.data.augmentation: the named policies."""

import numpy as np
import pytest

import keras

from keras_regkit.data import AUGMENTATION_POLICIES
from keras_regkit.data import augmentation_model_layers
from keras_regkit.data import get_augmentation
from keras_regkit.data import let_jax_compile
from keras_regkit.data import seed_augmentation
from tests.helpers import random_images

L = keras.layers


def _run(layer, images, training=True):
    return keras.ops.convert_to_numpy(layer(images, training=training))


@pytest.mark.parametrize("name", AUGMENTATION_POLICIES[1:])
def test_policy_shapes_range_and_inference_identity(name):
    images = random_images(64)
    augment = get_augmentation(name, seed=0)
    assert isinstance(augment, keras.Sequential)
    out = _run(augment, images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    assert np.abs(out - images).mean() > 1e-3  # it changed something
    np.testing.assert_array_equal(_run(augment, images, training=False),
                                  images)


def test_none_policy_is_none():
    assert get_augmentation("none") is None
    assert augmentation_model_layers("none") == []


def test_standard_is_the_seeds_five_layers():
    layers = seed_augmentation(seed=3).layers
    assert [type(layer) for layer in layers] == [
        L.RandomFlip, L.RandomRotation, L.RandomZoom, L.RandomTranslation,
        L.RandomContrast]
    flip, rotation, zoom, translation, contrast = layers
    assert flip.mode == "horizontal"
    assert tuple(rotation.get_config()["factor"]) == (-0.1, 0.1)
    assert zoom.get_config()["height_factor"] == 0.1
    config = translation.get_config()
    assert (config["height_factor"], config["width_factor"]) == (0.1, 0.1)
    assert max(contrast.get_config()["factor"]) == 0.1
    assert tuple(contrast.get_config()["value_range"]) == (0, 1)
    assert [layer.get_config()["seed"] for layer in layers] == [3, 4, 5, 6, 7]
    def configs(sequential):
        return [{k: v for k, v in layer.get_config().items() if k != "name"}
                for layer in sequential.layers]

    assert configs(seed_augmentation(seed=3)) == configs(
        get_augmentation("standard", seed=3))


def test_strong_adds_erasing_and_larger_ranges():
    layers = get_augmentation("strong").layers
    assert isinstance(layers[-1], L.RandomErasing)
    assert max(layers[1].get_config()["factor"]) > 0.1


def test_unknown_policy_lists_the_names():
    with pytest.raises(ValueError, match="`name`.*'flip_translate'.*'strong'"):
        get_augmentation("heavy")


def test_bad_seed_is_refused():
    with pytest.raises(ValueError, match="`seed`"):
        get_augmentation("flip", seed=-2)


def test_flip_probability_is_one_half():
    image = random_images(1)
    copies = np.repeat(image, 400, axis=0)
    out = _run(get_augmentation("flip", seed=1), copies)
    flipped = np.all(np.isclose(out, image[:, :, ::-1]), axis=(1, 2, 3))
    unchanged = np.all(np.isclose(out, image), axis=(1, 2, 3))
    assert np.all(flipped | unchanged)
    assert abs(flipped.mean() - 0.5) < 0.08  # 3 standard errors


def test_flip_translate_shifts_whole_pixels_up_to_four():
    image = random_images(1)[0]
    out = _run(get_augmentation("flip_translate", seed=2),
               np.repeat(image[None], 24, axis=0))
    centre = slice(6, 26)
    shifts = []
    for picture in out:
        best = min(
            (np.abs(picture[centre, centre] - source[6 + dy:26 + dy,
                                                      6 + dx:26 + dx]).max(),
             dy, dx)
            for source in (image, image[:, ::-1])
            for dy in range(-5, 6) for dx in range(-5, 6))
        assert best[0] < 1e-6  # an exact whole-pixel shift
        shifts.append(best[1:])
    shifts = np.array(shifts)
    assert np.abs(shifts).max() <= 4 and np.abs(shifts).max() >= 2


def test_model_layers_from_each_kind():
    assert len(augmentation_model_layers("standard", seed=0)) == 5
    sequential = get_augmentation("light")
    assert augmentation_model_layers(sequential) == sequential.layers
    flip = L.RandomFlip()
    assert augmentation_model_layers(flip) == [flip]
    assert augmentation_model_layers(None) == []
    with pytest.raises(ValueError, match="`augmentation`"):
        augmentation_model_layers(42)


# Keras's affine augmentation layers, which it marks as not jit-compatible.
AFFINE = {
    "translation": lambda: L.RandomTranslation(0.2, 0.2, seed=1),
    "rotation": lambda: L.RandomRotation(0.2, seed=1),
    "zoom": lambda: L.RandomZoom(0.2, seed=1),
    "shear": lambda: L.RandomShear(0.2, 0.2, seed=1),
}


@pytest.mark.parametrize("kind", sorted(AFFINE))
def test_let_jax_compile_marks_affine_layers_on_jax_only(kind):
    layer = AFFINE[kind]()
    assert not layer.supports_jit  # Keras's own mark, for TensorFlow's XLA
    model = keras.Sequential([keras.Input((16, 16, 3)), L.RandomFlip(),
                              keras.Sequential([layer])])
    on_jax = keras.backend.backend() == "jax"
    assert let_jax_compile(model) == ([layer.name] if on_jax else [])
    assert layer.supports_jit == on_jax
    assert let_jax_compile(model) == []  # marked once
    model.compile("sgd", "mse")
    assert model.jit_compile == on_jax


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="compiles with jax.jit")
@pytest.mark.parametrize("kind", sorted(AFFINE))
def test_compiled_affine_layer_draws_what_the_eager_one_draws(kind):
    import jax

    layer = AFFINE[kind]()
    images = random_images(4, (16, 16, 3), seed=0)
    layer.build(images.shape)
    state = [v.value for v in layer.non_trainable_variables]
    eager = _run(layer, images)  # draws from `state`, then advances it
    compiled = jax.jit(lambda state, x: layer.stateless_call(
        [], state, x, training=True))
    out, new_state = compiled(state, images)
    # Same seed state, same transform: equal up to float32 rounding of
    # the interpolation weights (pixels lie in [0, 1]).
    np.testing.assert_allclose(np.asarray(out), eager, atol=1e-5)
    assert np.abs(eager - images).max() > 0.1  # it did transform
    assert any(not np.array_equal(a, b) for a, b in zip(state, new_state))


def test_policies_come_marked_and_bad_input_is_refused():
    policy = get_augmentation("standard", seed=0)
    marks = {type(layer).__name__: layer.supports_jit
             for layer in policy.layers if isinstance(
                 layer, (L.RandomRotation, L.RandomZoom,
                         L.RandomTranslation))}
    assert len(marks) == 3
    assert set(marks.values()) == {keras.backend.backend() == "jax"}
    with pytest.raises(ValueError, match="layer.*'flip'"):
        let_jax_compile("flip")
