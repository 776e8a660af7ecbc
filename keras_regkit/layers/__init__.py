"""keras_regkit layers: stochastic regularization Keras lacks."""
