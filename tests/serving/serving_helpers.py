"""Constants and data helpers shared by the serving tests."""

import numpy as np

from ave_tf import ave

MODEL_NAME = "psp_fully"
TEST_MAX_BODY_BYTES = 128 * 1024 * 1024
"""Above a batch of 16 videos in row format (~81 MB of JSON)."""


def random_videos(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """audio (batch, 10, 128) and visual (batch, 10, 7, 7, 512) float32 features."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(batch, ave.NUM_SEGMENTS, ave.AUDIO_DIM)).astype(np.float32)
    visual = rng.random((batch, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), dtype=np.float32)
    return audio, visual
