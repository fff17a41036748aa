"""Small stand-ins for VGGish and VGG19 with the real input and output shapes, for tests
about plumbing (the real architectures run in the slow end-to-end test)."""

import functools

import keras
import numpy as np

from ave_tf.extraction.extractor import FeatureExtractor


def tiny_audio_model(seed: int = 0) -> keras.Model:
    """(batch, 96, 64) log-mel examples -> (batch, 128): one dense layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((96, 64))
    return keras.Model(inputs, keras.layers.Dense(128)(keras.layers.Flatten()(inputs)))


def tiny_visual_model(seed: int = 0) -> keras.Model:
    """(batch, 224, 224, 3) -> (batch, 7, 7, 512): 32x32 block means, then 3 -> 512 linear."""
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.AveragePooling2D(32)(inputs)
    dense = keras.layers.Dense(512, use_bias=False)
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.random.default_rng(seed).normal(size=(3, 512))])
    return model


@functools.cache
def tiny_feature_extractor(batch_size: int = 32):
    """A `FeatureExtractor` of the two tiny models above (seed 0), one per process and batch
    size (tests build several datasets in one process; the models compile once). The
    ``tfds_ave`` video build tests name it as their ``extractor_factory``, so that Beam
    workers build it too."""
    return FeatureExtractor(tiny_audio_model(), tiny_visual_model(), batch_size)
