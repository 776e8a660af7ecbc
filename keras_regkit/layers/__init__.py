"""keras_regkit layers: stochastic regularization Keras lacks."""

from keras_regkit.layers.concrete_dropout import ConcreteDropout
from keras_regkit.layers.concrete_dropout import concrete_dropout_regularization
from keras_regkit.layers.concrete_dropout import relaxed_dropout
from keras_regkit.layers.drop_block import DropBlock2D
from keras_regkit.layers.drop_block import drop_block
from keras_regkit.layers.drop_connect import DropConnect
from keras_regkit.layers.drop_connect import DropConnectDense
from keras_regkit.layers.drop_connect import drop_connect_kernel
from keras_regkit.layers.fast_kernels import FastConv2D
from keras_regkit.layers.fast_kernels import FusedBatchNormalization
from keras_regkit.layers.fast_kernels import GELU
from keras_regkit.layers.mc_dropout import MCDropout
from keras_regkit.layers.mc_dropout import MCSpatialDropout2D
from keras_regkit.layers.mc_dropout import set_mc_dropout
from keras_regkit.layers.scaled_bias import ScaledBias
from keras_regkit.layers.stochastic_depth import StochasticDepth
from keras_regkit.layers.stochastic_depth import drop_path
from keras_regkit.layers.weight_noise import GaussianWeightNoise
from keras_regkit.layers.weight_noise import gaussian_weight_noise
from keras_regkit.layers.whitening import PatchWhitening
from keras_regkit.layers.whitening import patch_whitening_kernel

__all__ = [
    "ConcreteDropout",
    "DropBlock2D",
    "DropConnect",
    "DropConnectDense",
    "FastConv2D",
    "FusedBatchNormalization",
    "GELU",
    "GaussianWeightNoise",
    "MCDropout",
    "MCSpatialDropout2D",
    "PatchWhitening",
    "ScaledBias",
    "StochasticDepth",
    "concrete_dropout_regularization",
    "drop_block",
    "drop_connect_kernel",
    "drop_path",
    "gaussian_weight_noise",
    "patch_whitening_kernel",
    "relaxed_dropout",
    "set_mc_dropout",
]
