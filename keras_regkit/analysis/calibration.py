"""Calibration: the reliability diagram of a trained model's predictions.

The expected calibration error itself (`expected_calibration_error`, the
`ExpectedCalibrationError` metric and `calibration_bins`) lives in
`keras_regkit.metrics`, so that `import keras_regkit` registers the metric
for loading saved models; it is re-exported here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from keras import ops
from matplotlib.figure import Figure

from keras_regkit._typing import StrPath
from keras_regkit._validation import check_int
from keras_regkit.analysis.plots import new_figure, save_figure
from keras_regkit.metrics import ExpectedCalibrationError  # noqa: F401
from keras_regkit.metrics import calibration_bins
from keras_regkit.metrics import expected_calibration_error


def plot_reliability_diagram(y_true: npt.ArrayLike, probs: npt.ArrayLike,
                             n_bins: int = 15, path: StrPath | None = None,
                             title: str | None = None) -> Figure:
    """Reliability diagram: accuracy against confidence per bin.

    Bars show each bin's accuracy, the diagonal is perfect calibration,
    red hatching the gap to it; a lower panel shows how many predictions
    fall in each bin. The ECE is in the title.

    Args:
        y_true: integer or one-hot labels.
        probs: predicted probabilities `(N, K)`.
        n_bins: number of confidence bins. Defaults to `15`.
        path: PNG file to write (600 x 700 pixels). Defaults to `None`.
        title: figure title. Defaults to `None` ("Reliability diagram").

    Returns:
        The matplotlib Figure.
    """
    n_bins = check_int("n_bins", n_bins, 1)
    counts, conf, correct = (np.asarray(ops.convert_to_numpy(t), "float64")
                             for t in calibration_bins(y_true, probs, n_bins))
    ece = expected_calibration_error(y_true, probs, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1.0 / n_bins
    filled = counts > 0
    accuracy = np.where(filled, correct / np.maximum(counts, 1), 0.0)
    mean_conf = np.where(filled, conf / np.maximum(counts, 1), centers)
    fig = new_figure(figsize=(6, 7))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.bar(centers, accuracy, width=width, edgecolor="black",
            label="accuracy")
    top.bar(centers[filled], (mean_conf - accuracy)[filled], width=width,
            bottom=accuracy[filled], color="none", edgecolor="red",
            hatch="//", label="gap to confidence")
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left")
    top.set_title(f"{title or 'Reliability diagram'} (ECE {ece:.3f})")
    bottom.bar(centers, counts, width=width, edgecolor="black")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
