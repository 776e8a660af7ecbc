"""bench/tta_variants.py: its views and averages, against the library's TTA."""

import keras
import numpy as np
import pytest

from keras_regkit.training.tta import tta_predict
from tests.helpers import REPO_ROOT


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))
    import tta_variants

    return tta_variants


def test_a_shift_moves_the_image_and_fills_the_border(bench):
    images = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    down_right = bench.shifted(images, 1, 1, "edge")
    np.testing.assert_array_equal(down_right[:, 1:, 1:], images[:, :-1, :-1])
    np.testing.assert_array_equal(down_right[:, 0, 1:], images[:, 0, :-1])
    up_left = bench.shifted(images, -1, -1, "reflect")
    np.testing.assert_array_equal(up_left[:, :-1, :-1], images[:, 1:, 1:])
    # Reflection repeats the row before the border, not the border itself.
    np.testing.assert_array_equal(up_left[:, -1, :-1], images[:, -2, 1:])


# The comparison rests on one model's predictions: no need to repeat it on
# every backend (the library's TTA is tested on each in training/).
@pytest.mark.tensorflow_pass
def test_its_plain_row_is_the_librarys_flip_translate(bench):
    rng = np.random.default_rng(0)
    images = rng.random((24, 32, 32, 3)).astype("float32")
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax")])
    views = bench.view_probabilities(model, images, batch_size=8)
    assert len(views) == 2 * (1 + 8 * 2)  # mirror x (plain + 8 shifts x 2)
    ours = bench.combine(views, bench.SHIFTS["diag2"], "edge", 1 / 3, "prob")
    library = tta_predict(model, images, batch_size=8, tta="flip_translate")
    np.testing.assert_allclose(ours, library, atol=1e-6)
    # Half the weight on the unshifted pair changes the mean, as it should.
    half = bench.combine(views, bench.SHIFTS["diag2"], "edge", 0.5, "prob")
    assert np.abs(half - library).max() > 1e-6
    np.testing.assert_allclose(half.sum(-1), 1.0, atol=1e-6)
