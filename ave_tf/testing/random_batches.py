"""Random AVE-shaped batches and a compiled PSP network, for tests and benchmarks."""

import keras
import numpy as np

from ave_tf.ave import AUDIO_DIM, BACKGROUND, NUM_CLASSES, NUM_SEGMENTS, VISUAL_SHAPE
from ave_tf.config import PSPConfig
from ave_tf.models import model_for_config, training_objectives


def random_batch(size: int, seed: int = 0) -> tuple[dict, dict]:
    """``(inputs, targets)`` for ``size`` random videos with AVE-like labels.

    Each video has one category on ~70 % of its segments, background elsewhere.

    Returns:
        inputs ``{"audio": (size, 10, 128), "visual": (size, 10, 7, 7, 512)}`` float32 and
        targets for every output of either network: ``segment_logits``,
        ``segment_probabilities``, ``av_similarity`` (the segment labels, (size, 10) int32) and
        ``video_probabilities`` (prob_label, (size, 29) float32).
    """
    rng = np.random.default_rng(seed)
    inputs = {
        "audio": rng.uniform(0, 2, (size, NUM_SEGMENTS, AUDIO_DIM)).astype("float32"),
        "visual": rng.uniform(0, 1, (size, NUM_SEGMENTS, *VISUAL_SHAPE)).astype("float32"),
    }
    categories = rng.integers(0, BACKGROUND, (size, 1))
    labels = np.where(rng.uniform(size=(size, NUM_SEGMENTS)) < 0.3, BACKGROUND, categories)
    labels = labels.astype("int32")
    prob_label = np.stack([np.bincount(row, minlength=NUM_CLASSES) for row in labels])
    targets = {
        "segment_logits": labels,
        "segment_probabilities": labels,
        "av_similarity": labels,
        "video_probabilities": (prob_label / NUM_SEGMENTS).astype("float32"),
    }
    return inputs, targets


def compiled_model(config: PSPConfig, jit_compile: bool) -> keras.Model:
    """The network for ``config`` compiled with ``training_objectives`` and the official Adam."""
    model = model_for_config(config)
    losses, loss_weights, metrics = training_objectives(config)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8),
        loss=losses,
        loss_weights=loss_weights,
        metrics=metrics,
        jit_compile=jit_compile,
    )
    return model
