"""Initializers that reproduce the official (PyTorch) initialisation where it is not Glorot.

The official code Xavier-initialises AVGA, the PSP projections and the classifier, and leaves
PyTorch's defaults elsewhere: ``nn.Linear`` weights and biases and all LSTM parameters are drawn
from U(-1/sqrt(fan), 1/sqrt(fan)), with fan = fan_in for Linear and the hidden size for LSTMs.
"""

import math

import keras


def torch_linear_kernel() -> keras.initializers.Initializer:
    """PyTorch's default ``nn.Linear`` weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def torch_uniform(fan: int) -> keras.initializers.Initializer:
    """U(-1/sqrt(fan), 1/sqrt(fan)): PyTorch's Linear bias and LSTM parameter init."""
    limit = 1.0 / math.sqrt(fan)
    return keras.initializers.RandomUniform(minval=-limit, maxval=limit)
