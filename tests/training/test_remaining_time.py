"""The remaining-time estimate `regkit train` prints after its first epochs."""

import keras
import pytest

from keras_regkit.training import _remaining_time
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


class _Clock:
    """Stands in for `time.perf_counter`; epochs move it forward."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now


class _Slow(keras.callbacks.Callback):
    """Makes each epoch last `seconds[epoch]` on `clock`, without waiting."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def on_epoch_end(self, epoch, logs=None):
        self.clock.now += self.seconds[epoch]


def test_prints_after_the_first_two_epochs_only(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(_remaining_time, "time", clock)
    x, y = toy_data()
    lines = []
    model = toy_classifier("sgd")
    # Callbacks run in order, so the clock moves before the estimate reads
    # it: the first epoch (compilation included) takes 150 s, the next 61 s.
    model.fit(x, y, epochs=4, verbose=0,
              callbacks=[_Slow(clock, [150, 61, 5, 5]),
                         RemainingTimeEstimate(lines.append)])
    assert lines == [
        "epoch 1 took 2 min 30 s; about 7 min 30 s left for 3 more epochs "
        "(first epoch, compilation included; early stopping may end the "
        "run sooner)",
        "epoch 2 took 1 min 01 s; about 2 min 02 s left for 2 more epochs "
        "(at the second epoch's pace; early stopping may end the run "
        "sooner)",
    ]


def test_nothing_when_no_epoch_is_left():
    x, y = toy_data()
    lines = []
    toy_classifier("sgd").fit(x, y, epochs=1, verbose=0,
                         callbacks=[RemainingTimeEstimate(lines.append)])
    assert lines == []
