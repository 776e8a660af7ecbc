"""The reliability diagram (the ECE itself is tested in test_metrics.py)."""

import numpy as np
from PIL import Image

from keras_regkit.analysis.calibration import plot_reliability_diagram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Confidences 0.95 (right), 0.75 (wrong), 0.55 (right), 0.70 (right); no
# confidence sits on a bin edge for 5 bins.
PROBS = np.array([[0.95, 0.05], [0.75, 0.25], [0.45, 0.55], [0.30, 0.70]],
                 dtype="float32")
LABELS = np.array([0, 1, 1, 1])


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size


def test_reliability_diagram_png(tmp_path):
    path = tmp_path / "reliability.png"
    fig = plot_reliability_diagram(LABELS, PROBS, n_bins=5, path=path,
                                   title="toy")
    assert_png(path, (600, 700))
    assert fig.axes[0].get_title() == "toy (ECE 0.238)"

