"""Random videos with a learnable label signal, as splits for ``ave_tf.data.InMemorySource``."""

import numpy as np

from ave_tf import ave


def random_splits(sizes: dict[str, int], seed: int = 0) -> dict[str, tuple]:
    """Random arrays in the model contract's shapes with a learnable label signal.

    Each video gets a category c and an event window; event segments carry c's pattern in
    audio and visual features, background segments label 28.

    Args:
        sizes: split name -> number of videos.
        seed: seed of the generator.

    Returns:
        split name -> (audio (N, 10, 128) float32, visual (N, 10, 7, 7, 512) float32,
        segment_labels (N, 10) int32), non-negative features.
    """
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(ave.NUM_CLASSES, ave.AUDIO_DIM)).astype(np.float32)
    visual_patterns = rng.normal(size=(ave.NUM_CLASSES, ave.VISUAL_SHAPE[-1])).astype(np.float32)
    splits = {}
    for name, count in sizes.items():
        category = rng.integers(0, ave.BACKGROUND, size=count)
        start = rng.integers(0, 5, size=count)
        end = start + rng.integers(2, 6, size=count)
        t = np.arange(ave.NUM_SEGMENTS)[None]
        event = (t >= start[:, None]) & (t < end[:, None])
        labels = np.where(event, category[:, None], ave.BACKGROUND).astype(np.int32)
        audio = rng.random((count, ave.NUM_SEGMENTS, ave.AUDIO_DIM), np.float32)
        audio += patterns[labels]
        visual = rng.random((count, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), np.float32)
        visual += visual_patterns[labels][:, :, None, None, :]
        splits[name] = (np.maximum(audio, 0), np.maximum(visual, 0), labels)
    return splits
