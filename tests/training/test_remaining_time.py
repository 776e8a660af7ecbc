"""The remaining-time estimate `regkit train` prints after its first epochs."""

import time

import keras
import pytest

from keras_regkit.training._remaining_time import RemainingTimeEstimate
from keras_regkit.training._remaining_time import format_seconds
from tests.helpers import toy_classifier
from tests.helpers import toy_data


@pytest.mark.parametrize("seconds, text", [
    (0.4, "0 s"), (59.4, "59 s"), (60, "1 min 00 s"), (185, "3 min 05 s"),
    (3600, "1 h 00 min"), (3725, "1 h 02 min"), (-3, "0 s"),
])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


class _Slow(keras.callbacks.Callback):
    """Makes every epoch last at least `seconds`."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)


def test_prints_after_the_first_two_epochs_only():
    x, y = toy_data()
    lines = []
    model = toy_classifier("sgd")
    # Callbacks run in order, so the sleep goes first: each epoch then
    # takes at least 0.6 s by the time the estimate is measured.
    model.fit(x, y, epochs=4, verbose=0,
              callbacks=[_Slow(0.6), RemainingTimeEstimate(lines.append)])
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1 took ")
    assert "left for 3 more epochs (first epoch, compilation included" in (
        lines[0])
    assert "left for 2 more epochs (at the second epoch's pace" in lines[1]
    # Two epochs left at >= 0.6 s each: at least 1.2 s, printed as >= 1 s.
    left = lines[1].split("about ")[1].split(" left")[0]
    assert left.endswith(" s") and int(left[:-2]) >= 1


def test_nothing_when_no_epoch_is_left():
    x, y = toy_data()
    lines = []
    toy_classifier("sgd").fit(x, y, epochs=1, verbose=0,
                         callbacks=[RemainingTimeEstimate(lines.append)])
    assert lines == []
