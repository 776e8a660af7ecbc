"""Tests for keras_regkit.data.image_data_generator: the migration helper."""

import math

import numpy as np
import pytest

import keras

from keras_regkit.data import augmentation_from_image_data_generator

L = keras.layers


def _run(layer, images, training=True):
    return keras.ops.convert_to_numpy(layer(images, training=training))


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
