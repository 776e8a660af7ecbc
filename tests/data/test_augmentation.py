"""Tests for keras_regkit.data.augmentation (policies, ImageDataGenerator)."""

import math

import numpy as np
import pytest

import keras

from keras_regkit.data import AUGMENTATION_POLICIES
from keras_regkit.data import augmentation_from_image_data_generator
from keras_regkit.data import augmentation_model_layers
from keras_regkit.data import get_augmentation
from keras_regkit.data import seed_augmentation

L = keras.layers


def _run(layer, images, training=True):
    return keras.ops.convert_to_numpy(layer(images, training=training))


@pytest.mark.parametrize("name", AUGMENTATION_POLICIES[1:])
def test_policy_shapes_range_and_inference_identity(name, cifar10_batch):
    images, _ = cifar10_batch
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


def test_flip_probability_is_one_half(cifar10_batch):
    image = cifar10_batch[0][:1]
    copies = np.repeat(image, 400, axis=0)
    out = _run(get_augmentation("flip", seed=1), copies)
    flipped = np.all(np.isclose(out, image[:, :, ::-1]), axis=(1, 2, 3))
    unchanged = np.all(np.isclose(out, image), axis=(1, 2, 3))
    assert np.all(flipped | unchanged)
    assert abs(flipped.mean() - 0.5) < 0.08  # 3 standard errors


def test_flip_translate_shifts_whole_pixels_up_to_four(cifar10_batch):
    image = cifar10_batch[0][0]
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


def test_tutorial_image_data_generator_arguments():
    augment = augmentation_from_image_data_generator(
        rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
        horizontal_flip=True, seed=5)
    rotation, translation, flip = augment.layers
    assert isinstance(rotation, L.RandomRotation)
    assert np.allclose(rotation.get_config()["factor"], (-20 / 360, 20 / 360))
    config = translation.get_config()
    assert (config["height_factor"], config["width_factor"]) == (0.2, 0.2)
    assert config["fill_mode"] == "nearest"  # ImageDataGenerator's default
    assert flip.mode == "horizontal"


def test_generator_mapping_of_every_supported_argument():
    augment = augmentation_from_image_data_generator(
        image_size=32, rotation_range=10, shear_range=30, zoom_range=0.2,
        width_shift_range=4, height_shift_range=0.1, horizontal_flip=True,
        vertical_flip=True, fill_mode="constant", cval=0.5,
        interpolation_order=0, channel_shift_range=25.5, rescale=1 / 255)
    types = [type(layer) for layer in augment.layers]
    assert types == [L.RandomRotation, L.RandomShear, L.RandomZoom,
                     L.RandomTranslation, L.RandomFlip, L.RandomBrightness]
    shear = augment.layers[1].get_config()
    assert math.isclose(shear["x_factor"][1], 0.5)  # sin(30 degrees)
    zoom = augment.layers[2].get_config()
    assert np.allclose(zoom["height_factor"], (-0.2, 0.2))
    assert np.allclose(zoom["width_factor"], (-0.2, 0.2))
    translation = augment.layers[3].get_config()
    assert translation["width_factor"] == 4 / 32
    assert translation["fill_value"] == 0.5
    assert translation["interpolation"] == "nearest"
    assert augment.layers[4].mode == "horizontal_and_vertical"
    brightness = augment.layers[5].get_config()
    assert np.allclose(brightness["factor"], (-0.1, 0.1))


def test_generator_pixel_shifts_with_height_and_width():
    augment = augmentation_from_image_data_generator(
        image_size=(40, 20), width_shift_range=5, height_shift_range=8)
    config = augment.layers[0].get_config()
    assert (config["height_factor"], config["width_factor"]) == (0.2, 0.25)


def test_generator_zoom_direction_matches_image_data_generator():
    # ImageDataGenerator's zoom 1.5 samples 1.5x the field of view: the
    # square in the middle shrinks.
    image = np.zeros((1, 32, 32, 3), "float32")
    image[:, 8:24, 8:24] = 1.0
    augment = augmentation_from_image_data_generator(
        zoom_range=[1.5, 1.5], fill_mode="constant")
    out = _run(augment, image)
    assert out.mean() == pytest.approx(image.mean() / 1.5**2, rel=0.15)


def test_generator_without_augmentation_is_none():
    assert augmentation_from_image_data_generator() is None
    assert augmentation_from_image_data_generator(
        featurewise_center=False, zoom_range=0.0, rescale=None) is None


@pytest.mark.parametrize("name,value", [
    ("featurewise_center", True),
    ("featurewise_std_normalization", True),
    ("zca_whitening", True),
    ("samplewise_center", True),
    ("samplewise_std_normalization", True),
    ("brightness_range", [0.8, 1.2]),
    ("preprocessing_function", lambda x: x),
    ("validation_split", 0.2),
])
def test_generator_refuses_arguments_with_advice(name, value):
    with pytest.raises(ValueError, match=f"`{name}`.*Instead"):
        augmentation_from_image_data_generator(**{name: value})


@pytest.mark.parametrize("kwargs,name", [
    ({"width_shift_range": 4}, "width_shift_range"),  # pixels, no size
    ({"height_shift_range": [-2, 0, 2]}, "height_shift_range"),
    ({"zoom_range": [1.2, 0.8]}, "zoom_range"),
    ({"shear_range": 120}, "shear_range"),
    ({"fill_mode": "mirror"}, "fill_mode"),
    ({"interpolation_order": 3}, "interpolation_order"),
    ({"rescale": 2.0}, "rescale"),
    ({"data_format": "nhwc"}, "data_format"),
    ({"rotation": 10}, "rotation"),  # a typo of rotation_range
    ({"image_size": 0, "width_shift_range": 4}, "image_size"),
])
def test_generator_invalid_values_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        augmentation_from_image_data_generator(**kwargs)
