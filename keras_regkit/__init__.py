"""keras_regkit: a toolkit against overfitting for Keras 3."""

__version__ = "0.1.0"
